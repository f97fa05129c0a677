"""A new user's way to the API: create a token in the page, use it from the openai client for a
streamed answer, revoke it in the page, and see the client refused."""

import openai
import pytest
from playwright.sync_api import expect

from tests.browser.helpers import sign_in
from usage.models import Usage

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_token_made_in_the_page_streams_an_answer_until_it_is_revoked(page, live_server, alice, upstream):
    sign_in(page, live_server, alice)
    page.get_by_role("link", name="API tokens").click()
    page.get_by_label("Name").fill("my script")
    page.get_by_role("button", name="Create token").click()
    token = page.locator("[data-new-token]").inner_text()
    assert token.startswith("cs-")

    client = openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=token, max_retries=0)
    upstream.stream(["Hello ", "from ", "the ", "API."])
    stream = client.chat.completions.create(
        model="mistralai/mistral-tiny", messages=[{"role": "user", "content": "Hi"}], stream=True
    )
    assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices) == "Hello from the API."
    assert Usage.objects.get(user=alice).source == "api"

    page.goto("/accounts/tokens/")  # a later visit: the token is not shown again
    expect(page.locator("[data-new-token]")).to_have_count(0)
    expect(page.get_by_text(token[:9] + "…")).to_be_visible()
    page.get_by_role("button", name="Revoke “my script”").click()
    expect(page.get_by_text("is revoked")).to_be_visible()
    with pytest.raises(openai.AuthenticationError):
        client.models.list()
