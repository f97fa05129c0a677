"""An OpenAI-compatible API at /v1/ for people's own tools, under personal access tokens.

It calls the same code as the chat page (key resolution, catalogue, quotas, the upstream client,
usage rows), so a person has one budget whichever way they ask.
"""
