from django import template

from common.links import url_for

register = template.Library()


@register.simple_tag
def link(name: str, *ids: int) -> str:
    """`{% url %}` for URLs whose arguments are all ids, without reversing each time (common.links)."""
    return url_for(name, *ids)
