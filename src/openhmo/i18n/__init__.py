"""Member-facing text in English, Japanese and Swedish, from one catalogue.

Every sentence a member, a provider's office or a shopper reads comes from
catalogue.yaml through `translate`; code never builds such a sentence itself. The
catalogue keeps the three languages of a message side by side so a missing or
mismatched translation shows in review and in the tests.
"""

from __future__ import annotations

import string
from functools import cache
from importlib import resources

import yaml

LANGUAGES = ("en", "ja", "sv")
DEFAULT_LANGUAGE = "en"


class MissingMessage(KeyError):
    """A message id the catalogue does not have."""


class _UniqueKeys(yaml.SafeLoader):
    """YAML that refuses a key given twice: two writers of one message id must not collide."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"message id {key!r} is defined twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


@cache
def catalogue() -> dict[str, dict[str, str]]:
    text = resources.files(__package__).joinpath("catalogue.yaml").read_text(encoding="utf-8")
    return yaml.load(text, Loader=_UniqueKeys)


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def translate(message_id: str, language: str = DEFAULT_LANGUAGE, /, **params: object) -> str:
    """The message in the language, its {placeholders} filled from params."""
    try:
        entry = catalogue()[message_id]
    except KeyError as exc:
        raise MissingMessage(message_id) from exc
    template = entry.get(language) or entry[DEFAULT_LANGUAGE]
    return template.format(**params)


t = translate
