"""The Content-Security-Policy in Chromium: an injected inline script is refused and reported,
and the admin, its key form and its usage page work under the policy."""

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import DESKTOP, sign_in
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_admin_works_under_the_content_security_policy(open_page, live_server, django_user_model):
    django_user_model.objects.create_superuser(username="root", password=PASSWORD)
    page = open_page()
    page.goto("/admin/")
    page.fill("input[name=username]", "root")
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()

    page.goto("/admin/auth/user/")
    page.get_by_role("link", name="root").click()
    expect(page.locator("#id_username")).to_have_value("root")
    # The admin's own scripts ran: the date/time shortcuts and the filter widgets are drawn by them.
    expect(page.locator(".selector-available, .datetimeshortcuts").first).to_be_attached()


def test_an_injected_inline_script_is_refused_and_reported(browser, live_server, alice):
    """What open_page's check relies on: Chromium refuses an inline script and says so on the console."""
    context = browser.new_context(base_url=live_server.url, viewport=DESKTOP)
    page = context.new_page()
    messages = []
    page.on("console", lambda message: messages.append(message.text))
    sign_in(page, live_server, alice)

    page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.x = 1'; document.body.append(s); }"
    )

    assert page.evaluate("() => window.x") is None
    assert any("Content Security Policy" in text for text in messages)
    context.close()


def test_an_admin_adds_a_key_and_opens_the_usage_page_within_the_content_security_policy(
    page, live_server, upstream, admin_user, alice
):
    from providers.models import ProviderKey
    from usage.models import Usage

    secret = "sk-browser-admin-secret-00007777"
    Usage.objects.create(user=alice, model="mistralai/mistral-tiny", status="complete", total_tokens=120)
    page.goto("/admin/login/")
    page.fill("#id_username", admin_user.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")

    page.goto("/admin/providers/providerkey/add/")
    page.fill("#id_label", "Team key")
    page.fill("#id_base_url", upstream.base_url)
    page.fill("#id_secret", secret)
    page.click("input[name=_save]")
    expect(page.locator("#result_list")).to_contain_text("••••7777")
    page.goto("/admin/usage/usage/")

    expect(page.locator("#usage-chart rect")).to_have_count(30)
    # The page's stylesheet applied (a <style> block would have been refused by the CSP).
    assert page.locator("#usage-filters").evaluate("node => getComputedStyle(node).display") == "flex"
    expect(page.locator("#usage-top-users")).to_contain_text("alice")
    assert secret not in page.content()
    assert ProviderKey.objects.get().last4 == "7777"
