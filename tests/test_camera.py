import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cogs.help import describe, help_lines
from hailuo.model import camera
from hailuo.model.camera import (
    CHOICES,
    COMMANDS,
    CameraWarning,
    CommandGroup,
    Spelling,
    append_command,
    parse_prompt,
    sent_length,
)
from hailuo.model.errors import UserInputError
from providers.registry import spelling_for

PAIRS = [
    ("Truck left", "左移"),
    ("Truck right", "右移"),
    ("Pan left", "左摇"),
    ("Pan right", "右摇"),
    ("Push in", "推进"),
    ("Pull out", "拉远"),
    ("Pedestal up", "上升"),
    ("Pedestal down", "下降"),
    ("Tilt up", "上摇"),
    ("Tilt down", "下摇"),
    ("Zoom in", "变焦推近"),
    ("Zoom out", "变焦拉远"),
    ("Shake", "晃动"),
    ("Tracking shot", "跟随"),
    ("Static shot", "固定"),
]


def refused(prompt: str) -> UserInputError:
    with pytest.raises(UserInputError) as info:
        parse_prompt(prompt)
    return info.value


def test_table_is_the_fifteen_pairs():
    assert [(c.english, c.chinese) for c in COMMANDS] == PAIRS
    assert all(describe(c).endswith(".") for c in COMMANDS)
    assert [english for english, _ in PAIRS] == CHOICES
    assert len(CHOICES) <= 25


@pytest.mark.parametrize(("english", "chinese"), PAIRS)
def test_english_to_chinese(english, chinese):
    assert parse_prompt(f"a cat [{english}]").render(Spelling.CHINESE) == f"a cat [{chinese}]"


@pytest.mark.parametrize(("english", "chinese"), PAIRS)
def test_chinese_to_english(english, chinese):
    assert parse_prompt(f"a cat [{chinese}]").render(Spelling.ENGLISH) == f"a cat [{english}]"


@pytest.mark.parametrize(
    ("provider", "spelling"),
    [
        ("minimax", Spelling.ENGLISH),
        ("freepik", Spelling.ENGLISH),
        ("novita", Spelling.ENGLISH),
        ("odkkk", Spelling.ENGLISH),
        ("gptge", Spelling.CHINESE),
    ],
)
def test_provider_spelling(provider, spelling):
    assert spelling_for(provider) is spelling


def test_unknown_provider_is_a_bug():
    with pytest.raises(KeyError):
        spelling_for("nobody")


def test_combined_and_sequential_groups():
    parsed = parse_prompt("A girl [Pan left,Pedestal up] rides, then [Push in] and [Pull out].")
    assert [[c.english for c in g.commands] for g in parsed.groups] == [
        ["Pan left", "Pedestal up"],
        ["Push in"],
        ["Pull out"],
    ]
    assert parsed.render(Spelling.CHINESE) == "A girl [左摇,上升] rides, then [推进] and [拉远]."
    assert parsed.warnings == ()


def test_segments_in_order_and_text_untouched():
    parsed = parse_prompt("  two  spaces[Shake][Static shot]\n tail ")
    assert parsed.segments == (
        "  two  spaces",
        CommandGroup((COMMANDS[12],)),
        CommandGroup((COMMANDS[14],)),
        "\n tail ",
    )


def test_case_spacing_and_full_width_separators():
    parsed = parse_prompt("x [pan LEFT , pedestal up] y [ 左摇，上升、 tilt   down ] [ZOOM IN,]")
    assert parsed.render(Spelling.ENGLISH) == (
        "x [Pan left,Pedestal up] y [Pan left,Pedestal up,Tilt down] [Zoom in]"
    )
    assert parsed.render(Spelling.CHINESE) == "x [左摇,上升] y [左摇,上升,下摇] [变焦推近]"


def test_push_out_alias_warns_once():
    parsed = parse_prompt("[Push in], then [push OUT] and again [Push out,Shake] [push OUT]")
    assert parsed.render(Spelling.ENGLISH) == (
        "[Push in], then [Pull out] and again [Pull out,Shake] [Pull out]"
    )
    # One warning per way of writing it, echoing the member's own text.
    assert [dict(w.params) for w in parsed.warnings] == [
        {"written": "push OUT", "meaning": "Pull out"},
        {"written": "Push out", "meaning": "Pull out"},
    ]
    assert {w.code for w in parsed.warnings} == {"camera.push_out_alias"}


def test_more_than_three_in_a_group_warns():
    parsed = parse_prompt("[Shake] x [Pan left,Tilt up,Zoom in,Shake]")
    assert len(parsed.groups[1].commands) == 4
    assert parsed.warnings == (
        CameraWarning("camera.too_many_in_group", {"group": 2, "count": 4, "maximum": 3}),
    )
    assert parse_prompt("[Pan left,Tilt up,Zoom in]").warnings == ()


@pytest.mark.parametrize(
    ("prompt", "command", "first"),
    [
        ("a [Pan lft] b", "Pan lft", "Pan left"),
        ("[Zoom inn]", "Zoom inn", "Zoom in"),
        ("[Static]", "Static", "Static shot"),
        ("[左摇, 左遥]", "左遥", "Pan left"),  # ties with 左移 (Truck left)
        ("[变焦推远]", "变焦推远", "Zoom in"),
    ],
)
def test_unknown_command_refused_with_suggestions(prompt, command, first):
    error = refused(prompt)
    assert error.rule == "camera.unknown"
    assert error.params["command"] == command
    suggestions = error.params["suggestions"]
    assert isinstance(suggestions, tuple)
    assert 1 <= len(suggestions) <= 3
    assert len(set(suggestions)) == len(suggestions)
    assert first in suggestions
    assert set(suggestions) <= set(CHOICES)


@pytest.mark.parametrize(
    "prompt", ["a sign saying [OPEN]", "a poster saying [SALE 50% off]", "[1] a [b] c"]
)
def test_bracket_close_to_no_command_is_kept_as_text(prompt):
    parsed = parse_prompt(prompt)
    assert parsed.groups == ()
    assert parsed.render(Spelling.ENGLISH) == prompt
    assert parsed.render(Spelling.CHINESE) == prompt
    assert parsed.camera_free_text() == prompt.strip()


def test_bracket_text_beside_a_real_command_keeps_both():
    parsed = parse_prompt("a sign saying [OPEN] [Pan left]")
    assert [g.render(Spelling.ENGLISH) for g in parsed.groups] == ["[Pan left]"]
    assert parsed.render(Spelling.CHINESE) == "a sign saying [OPEN] [左摇]"


def test_bracket_escaped_is_text_even_when_it_reads_as_a_command():
    parsed = parse_prompt(r"a sign saying \[Pan lft\] [Shake]")
    assert parsed.render(Spelling.CHINESE) == "a sign saying [Pan lft] [晃动]"
    assert len(parsed.groups) == 1


def test_bracket_close_to_a_command_still_refused_with_suggestion():
    error = refused("a [Pan lft] and [OPEN]")
    assert error.rule == "camera.unknown"
    assert "Pan left" in error.params["suggestions"]


@pytest.mark.parametrize(("prompt", "position"), [("a [] b", 2), ("[ ， ]", 0), ("x[,]", 1)])
def test_empty_group_refused(prompt, position):
    error = refused(prompt)
    assert error.rule == "camera.empty"
    assert dict(error.params) == {"position": position}


@pytest.mark.parametrize(
    ("prompt", "position", "bracket"),
    [
        ("a [Pan left", 2, "["),
        ("a Pan left] b", 10, "]"),
        ("[Shake] [[Pan left]]", 9, "["),
        ("[Shake]]", 7, "]"),
    ],
)
def test_unbalanced_refused(prompt, position, bracket):
    error = refused(prompt)
    assert error.rule == "camera.unbalanced"
    assert dict(error.params) == {"position": position, "bracket": bracket}


def test_sent_length_counts_the_translated_prompt():
    prompt = "A dog runs [Zoom in,Tracking shot] and stops [Static shot]"
    english = parse_prompt(prompt).render(Spelling.ENGLISH)
    chinese = parse_prompt(prompt).render(Spelling.CHINESE)
    assert sent_length(prompt, Spelling.ENGLISH) == len(english) == len(prompt)
    assert sent_length(prompt, Spelling.CHINESE) == len(chinese)
    assert sent_length(prompt, Spelling.CHINESE) < sent_length(prompt, Spelling.ENGLISH)
    # Chinese in, English out: longer when sent to an English provider.
    assert sent_length("[左摇]", Spelling.ENGLISH) == len("[Pan left]")


def test_camera_free_text():
    parsed = parse_prompt("[Push in]A cat[Pan left]walks, [Shake] then sits [固定]")
    assert parsed.camera_free_text() == "A cat walks,  then sits"
    assert parse_prompt("no camera here").camera_free_text() == "no camera here"


@pytest.mark.parametrize(
    ("prompt", "command", "expected"),
    [
        ("A cat", "Pan left", "A cat [Pan left]"),
        ("A cat [Shake]  ", "tracking shot", "A cat [Shake] [Tracking shot]"),
        ("", "Static shot", "[Static shot]"),
        ("   ", "固定", "[Static shot]"),
    ],
)
def test_append_command(prompt, command, expected):
    assert append_command(prompt, command) == expected
    assert parse_prompt(expected).render(Spelling.ENGLISH) == expected


def test_append_unknown_command_refused():
    with pytest.raises(UserInputError) as info:
        append_command("A cat", "Pan lft")
    assert info.value.rule == "camera.unknown"
    assert info.value.params["suggestions"][0] == "Pan left"


def test_help_lines():
    lines = help_lines()
    assert len(lines) == 15
    assert lines[2] == f"[Pan left] / [左摇]: {describe(COMMANDS[2])}"


# -- property: any valid prompt round-trips --------------------------------------

_SEPS = st.sampled_from([",", "，", "、", " , "])
_SPELLED = st.sampled_from(COMMANDS).flatmap(
    lambda c: st.sampled_from([c.english, c.english.upper(), c.english.lower(), c.chinese])
)


@st.composite
def _group(draw: st.DrawFn) -> str:
    names = draw(st.lists(_SPELLED, min_size=1, max_size=4))
    return "[" + draw(_SEPS).join(names) + "]"


# No backslash: ``\[`` escapes a bracket (tested on its own), so a piece ending in one
# would turn the next group's ``[`` into text and its ``]`` into an unbalanced bracket.
_TEXT = st.text(st.characters(blacklist_characters="[]\\", codec="utf-8"), max_size=20)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(_TEXT, _group()), max_size=8))
def test_round_trip(pieces):
    prompt = "".join(pieces)
    parsed = parse_prompt(prompt)
    english = parsed.render(Spelling.ENGLISH)
    chinese = parsed.render(Spelling.CHINESE)
    again = parse_prompt(english)
    assert again.render(Spelling.ENGLISH) == english
    assert again.render(Spelling.CHINESE) == chinese
    assert parse_prompt(chinese).render(Spelling.ENGLISH) == english
    free = parsed.camera_free_text()
    assert "[" not in free
    assert "]" not in free
    assert sent_length(prompt, Spelling.CHINESE) == len(chinese)
    assert sum(isinstance(s, camera.CommandGroup) for s in parsed.segments) == sum(
        p.startswith("[") for p in pieces
    )
