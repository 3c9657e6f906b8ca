"""Line-aligned UTF-8 text files, counted the way ``wc -l`` and fairseq-preprocess count them."""


def read_lines(path) -> list:
    """The lines of a UTF-8 text file, without their line ends ('\\n' or '\\r\\n').

    Only '\\n' ends a line (unlike str.splitlines, which also splits on
    U+2028 and friends), so the count agrees with ``wc -l`` and with the line
    numbering fairseq-preprocess used.
    """
    with open(path, encoding="utf-8", newline="") as handle:
        text = handle.read()
    if text == "":
        return []
    if text.endswith("\n"):
        text = text[:-1]
    return [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]


def write_lines(path, lines) -> None:
    """One line per item; a '\\r' or '\\n' inside an item becomes a space (alignment is kept)."""
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        for line in lines:
            handle.write(line.replace("\r", " ").replace("\n", " ") + "\n")
