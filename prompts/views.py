"""The prompt library's pages (list, create, edit, delete, use as system prompt) and the picker's data."""

from django.contrib import messages
from django.db.models import Case, Value, When
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from conversations.models import Conversation
from prompts import access, services, variables
from prompts.forms import PromptForm, SystemPromptForm
from prompts.models import Prompt

LIBRARY = "prompts/library.html"
PICKER_LIMIT = 500


def _library(request: HttpRequest, form: PromptForm, *, status: int = 200) -> HttpResponse:
    usable = access.usable(request.user)
    context = {
        "form": form,
        "mine": [p for p in usable if p.owner_id == request.user.pk],
        "shared": [p for p in usable if p.owner_id != request.user.pk],
        "writable": set(access.writable(request.user).values_list("pk", flat=True)),
        "for_conversation": request.GET.get("conversation", ""),
    }
    template = f"{LIBRARY}#library" if request.htmx else LIBRARY
    return render(request, template, context, status=status)


def _saved(form: PromptForm, save) -> Prompt | None:
    """The prompt `save(**fields)` stored, or None with the refusal on the form."""
    if not form.is_valid():
        return None
    try:
        return save(**form.cleaned_data)
    except services.PromptError as refused:
        form.add_error(refused.field, str(refused))
        return None


@require_http_methods(["GET", "POST"])
def library(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _library(request, PromptForm(user=request.user))
    form = PromptForm(request.POST, user=request.user)
    prompt = _saved(form, lambda **fields: services.prompt_create(owner=request.user, **fields))
    if prompt is None:
        return _library(request, form, status=422)
    messages.success(request, f"Saved /{prompt.command}: type it at the start of a message.")
    if not request.htmx:
        return redirect("prompts:library")
    return _library(request, PromptForm(user=request.user))


@require_http_methods(["GET", "POST"])
def prompt_edit(request: HttpRequest, prompt_pk: int) -> HttpResponse:
    prompt = get_object_or_404(access.writable(request.user), pk=prompt_pk)
    if request.method == "GET":
        form = PromptForm(user=request.user, prompt=prompt)
        return render(request, "prompts/edit.html", {"prompt": prompt, "form": form})
    form = PromptForm(request.POST, user=request.user, prompt=prompt)
    saved = _saved(form, lambda **fields: services.prompt_update(prompt=prompt, editor=request.user, **fields))
    if saved is None:
        return render(request, "prompts/edit.html", {"prompt": prompt, "form": form}, status=422)
    messages.success(request, f"Saved /{saved.command}.")
    return redirect("prompts:library")


@require_POST
def prompt_delete(request: HttpRequest, prompt_pk: int) -> HttpResponse:
    prompt = get_object_or_404(access.writable(request.user, action="delete"), pk=prompt_pk)
    services.prompt_delete(prompt=prompt)
    messages.success(request, f"Deleted /{prompt.command}.")
    if not request.htmx:
        return redirect("prompts:library")
    return _library(request, PromptForm(user=request.user))


@require_GET
def picker(request: HttpRequest) -> JsonResponse:
    """The prompts the person may use, with their bodies split into text and variables for the composer."""
    # The person's own first, then what is shared with them; by command within each.
    own_first = Case(When(owner=request.user, then=Value(0)), default=Value(1))
    prompts = access.usable(request.user).order_by(own_first, "command", "pk")[:PICKER_LIMIT]
    data = [
        {
            "id": prompt.pk,
            "command": prompt.command,
            "title": prompt.title,
            "audience": prompt.audience_label,
            "mine": prompt.owner_id == request.user.pk,
            "variables": variables.names(prompt.body),
            "parts": variables.parts(prompt.body),
        }
        for prompt in prompts
    ]
    response = JsonResponse({"prompts": data})
    response["Cache-Control"] = "private, no-store"
    return response


@require_http_methods(["GET", "POST"])
def system_prompt(request: HttpRequest, prompt_pk: int) -> HttpResponse:
    prompt = get_object_or_404(access.usable(request.user), pk=prompt_pk)
    if request.method == "GET":
        chosen = Conversation.objects.filter(
            owner=request.user, pk=_int_or_none(request.GET.get("conversation")), deleted_at__isnull=True
        ).first()
        form = SystemPromptForm(user=request.user, prompt=prompt, initial={"conversation": chosen})
        return render(request, "prompts/system_prompt.html", {"prompt": prompt, "form": form})
    form = SystemPromptForm(request.POST, user=request.user, prompt=prompt)
    if form.is_valid():
        conversation = form.cleaned_data["conversation"]
        try:
            services.prompt_use_as_system_prompt(prompt=prompt, conversation=conversation, values=form.values())
        except services.PromptError as refused:
            form.add_error(None, str(refused))
        else:
            return redirect(conversation)
    return render(request, "prompts/system_prompt.html", {"prompt": prompt, "form": form}, status=422)


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and len(value) < 18 else None
