"""build.py's pure parts: the Dockerfile parser, variable expansion and
.dockerignore matching."""

import pytest

from helpers.image import build


def test_parse_joins_continuations_and_drops_comments():
    text = ("# escape=\\\n# a comment\n\nFROM busybox AS b\nRUN echo a \\\n"
            "  # inside a continuation\n    && echo b\nenv A=1\n")
    assert build.parse(text) == [(4, "FROM", "busybox AS b"),
                                 (5, "RUN", "echo a && echo b"),
                                 (8, "ENV", "A=1")]


def test_parse_escape_directive():
    text = "# escape=`\nFROM x\nRUN dir c:\\ `\n  && echo\n"
    assert build.parse(text)[1] == (3, "RUN", "dir c:\\ && echo")


def test_expand():
    env = {"A": "1", "EMPTY": ""}
    assert build.expand("$A ${A} x${A}y", env) == "1 1 x1y"
    assert build.expand("${MISSING:-dflt} ${A:-dflt} ${EMPTY:-e}", env) == "dflt 1 e"
    assert build.expand("${A:+alt} ${MISSING:+alt}.", env) == "alt ."
    assert build.expand("\\$A $MISSING.", env) == "$A ."


def test_dockerignore_rules():
    pats = [(False, "*.log"), (False, "build"), (True, "build/keep.txt"), (False, "**/tmp")]
    assert build.ignored("a.log", pats)
    assert not build.ignored("sub/a.log", pats)          # * does not cross "/"
    assert build.ignored("build/x.o", pats)
    assert not build.ignored("build/keep.txt", pats)     # "!" re-includes
    assert build.ignored("src/tmp/f", pats) and build.ignored("tmp", pats)
    assert not build.ignored("src/main.c", pats)
    classes = [(False, "v[0-2].txt"), (False, "x[!a]")]
    assert build.ignored("v1.txt", classes) and not build.ignored("v5.txt", classes)
    assert build.ignored("xb", classes) and not build.ignored("xa", classes)


def test_json_and_shell_forms():
    assert build._json_or_shell('["a", "b c"]', ["/bin/sh", "-c"]) == (["a", "b c"], False)
    assert build._json_or_shell("echo [x]", ["/bin/sh", "-c"]) == \
        (["/bin/sh", "-c", "echo [x]"], True)
    assert build._json_or_shell('["not", json', ["sh", "-c"]) == (["sh", "-c", '["not", json'],
                                                                  True)


def test_heredocs_are_kept_with_their_instruction():
    steps = build.parse("FROM x\nRUN <<EOF\necho a\n  echo b\nEOF\n"
                        "COPY <<-A <<B /d/\n\tone\nA\ntwo\nB\nCMD true\n")
    assert [s[1] for s in steps] == ["FROM", "RUN", "COPY", "CMD"]
    first, bodies = build.heredocs(steps[1][2])
    assert first == "<<EOF" and bodies == {"EOF": "echo a\n  echo b\n"}
    first, bodies = build.heredocs(steps[2][2])
    assert first == "<<-A <<B /d/" and bodies == {"A": "one\n", "B": "two\n"}
    with pytest.raises(build.BuildError, match="no end"):
        build.parse("FROM x\nRUN <<EOF\necho a\n")


def test_run_flags():
    flags, rest = build._run_flags("--mount=type=cache,target=/c --network=none make all")
    assert flags == {"mount": ["type=cache,target=/c"], "network": ["none"]}
    assert rest == "make all"
    with pytest.raises(build.BuildError, match="unknown flag"):
        build._run_flags("--privileged make")
