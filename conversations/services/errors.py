"""The refusals of the chat's services, each with a message fit to show the person."""


class ChatError(Exception):
    """A request the chat cannot carry out, with a message fit to show the person."""


class LimitReached(ChatError):
    """The person's quota or rate limit refuses the message: nothing was stored or sent."""


class DatabaseBusy(ChatError):
    """The database stayed locked by another writer: nothing was stored, the person sends again."""
