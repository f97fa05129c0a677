"""Who may come in through the identity provider: the rules of OIDC_ALLOWED_DOMAINS and OIDC_REQUIRED_GROUP."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Identity:
    """What the provider says about the person signing in."""

    email: str
    email_verified: bool
    groups: frozenset[str]


def refusal(identity: Identity, *, allowed_domains: list[str], required_group: str) -> str | None:
    """Why this person may not come in (a sentence for them), or None when they may."""
    if required_group and required_group not in identity.groups:
        return f"Your account at the identity provider is not in the group “{required_group}” that this site requires."
    if allowed_domains:
        domain = identity.email.rpartition("@")[2].lower()
        if not identity.email_verified:
            return "The identity provider did not confirm your email address, so this site cannot tell who you are."
        if domain not in {allowed.lower() for allowed in allowed_domains}:
            return f"Accounts of {domain or 'your email domain'} may not sign in to this site."
    return None
