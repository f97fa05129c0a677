"""`{{ amount|money }}`: an amount in the site's currency, as usage.money writes it."""

from django import template

from usage.money import format_money

register = template.Library()


@register.filter
def money(amount) -> str:
    return format_money(amount)
