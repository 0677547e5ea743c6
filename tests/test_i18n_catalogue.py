"""The message catalogue: every message in every language, with the same placeholders."""

from __future__ import annotations

import pytest

from openhmo.i18n import LANGUAGES, catalogue, placeholders


def test_the_catalogue_has_messages():
    assert len(catalogue()) > 0


@pytest.mark.parametrize("message_id", sorted(catalogue()))
def test_every_message_has_every_language_with_the_same_placeholders(message_id):
    entry = catalogue()[message_id]
    assert set(entry) == set(LANGUAGES), f"{message_id} has {sorted(entry)}"
    for language in LANGUAGES:
        assert isinstance(entry[language], str), (message_id, language)
        assert entry[language].strip(), (message_id, language)
    english = placeholders(entry["en"])
    for language in LANGUAGES:
        assert placeholders(entry[language]) == english, (message_id, language)
