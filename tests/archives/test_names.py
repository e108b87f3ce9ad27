"""Member names: sanitised (no traversal, no absolute paths, no control characters) and unique."""

import pytest

from photojobs.archives.names import UniqueNames, member_names, safe_file_name


@pytest.mark.parametrize("raw, safe", [
    ("IMG_0001.jpg", "IMG_0001.jpg"),
    ("../x.jpg", "x.jpg"),
    ("../../../etc/passwd", "passwd"),
    ("/abs.jpg", "abs.jpg"),
    ("C:\\Users\\ada\\win.jpg", "win.jpg"),
    ("..\\..\\evil.jpg", "evil.jpg"),
    ("a/b/..", "b"),
    ("..", "photo"),
    ("", "photo"),
    ("/", "photo"),
    ("line\r\nbreak.jpg", "line__break.jpg"),
    ("nul\x00byte.jpg", "nul_byte.jpg"),
    ("bell\x07\x1b[31m.jpg", "bell__[31m.jpg"),
    ("del\x7f.jpg", "del_.jpg"),
    ("c1\x85.jpg", "c1_.jpg"),
    ('what?<>:"|*.jpg', "what_______.jpg"),
    (".hidden.jpg", "hidden.jpg"),
    ("trailing. . ", "trailing"),
    ("CON.jpg", "_CON.jpg"),
    ("nul", "_nul"),
    ("Cafe\u0301.jpg", "Caf\u00e9.jpg"),  # NFC
    ("\udcff\udcfe.jpg", "__.jpg"),  # undecodable bytes (surrogate-escaped)
    ("\x00\x01", "photo"),
])
def test_safe_file_name(raw, safe):
    assert safe_file_name(raw) == safe


def test_long_names_keep_their_extension():
    name = safe_file_name("x" * 400 + ".jpeg")
    assert len(name) <= 180 and name.endswith(".jpeg")


def test_no_result_can_escape_the_folder():
    for raw in ["../x", "/x", "..\\x", "x/../../y", "./../.", "\x00/../x"]:
        name = safe_file_name(raw)
        assert "/" not in name and "\\" not in name and name not in ("", ".", "..") and not name.startswith(".")


def test_duplicates_and_case_only_duplicates_get_numbers():
    unique = UniqueNames()
    claimed = [unique.claim(n) for n in ["a/x.jpg", "a/x.jpg", "a/X.JPG", "a/x (2).jpg", "b/x.jpg", "a/noext", "a/NOEXT"]]
    assert claimed == ["a/x.jpg", "a/x (2).jpg", "a/X (3).JPG", "a/x (2) (2).jpg", "b/x.jpg", "a/noext", "a/NOEXT (2)"]
    assert len({c.casefold() for c in claimed}) == len(claimed)


def test_member_names_are_numbered_in_order_and_organised_by_order():
    names = member_names(7, ["b.jpg", "../a.jpg", "/abs/b.jpg", "B.JPG"])
    assert names == ["Order-7/001-b.jpg", "Order-7/002-a.jpg", "Order-7/003-b.jpg", "Order-7/004-B.JPG"]


def test_member_numbers_widen_past_999():
    names = member_names(1, ["p.jpg"] * 1000)
    assert names[0] == "Order-1/0001-p.jpg" and names[-1] == "Order-1/1000-p.jpg"
