"""The token never reaches the output (pipe/scrubbing.py)."""
import base64
import io
import logging

from docker.auth import encode_header

from pipe.scrubbing import REDACTED, Scrubber, ScrubbingFilter, ScrubbingStream, Secret, encoded_forms

TOKEN = "s3cr3t-T0ken"


def scrubber():
    return Scrubber(encoded_forms("pipelines", TOKEN))


def test_scrub_replaces_every_occurrence():
    assert scrubber().scrub(f"a {TOKEN} b {TOKEN}") == f"a {REDACTED} b {REDACTED}"


def test_scrub_catches_the_encoded_forms():
    s = scrubber()
    basic = base64.b64encode(f"pipelines:{TOKEN}".encode()).decode()
    header = encode_header({"username": "pipelines", "password": TOKEN})
    header = header.decode() if isinstance(header, bytes) else header
    assert TOKEN not in s.scrub(basic) and basic not in s.scrub(f"Authorization: Basic {basic}")
    assert header not in s.scrub(f"X-Registry-Auth: {header}")


def test_tiny_secrets_are_not_scrubbed_and_empty_is_fine():
    assert Scrubber(["t", ""]).scrub("test") == "test"


def test_secret_never_shows_itself():
    secret = Secret(TOKEN)
    assert TOKEN not in repr(secret) and TOKEN not in str(secret) and TOKEN not in f"{secret}"
    assert secret.reveal() == TOKEN
    assert TOKEN not in repr({"token": secret})


def make_logger(s):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    handler.addFilter(ScrubbingFilter(s))
    logger = logging.getLogger("test_pipe_scrubbing")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, stream


def test_filter_scrubs_messages_args_and_tracebacks():
    logger, stream = make_logger(scrubber())
    logger.debug("sending %s", {"password": TOKEN})
    try:
        raise RuntimeError(f"login failed with {TOKEN}")
    except RuntimeError:
        logger.exception("oops %s", TOKEN)
    logger.info("stack", stack_info=True)
    text = stream.getvalue()
    assert TOKEN not in text
    assert "RuntimeError: login failed with ********" in text
    assert "sending {'password': '********'}" in text


def test_filter_survives_a_bad_format_string():
    logger, stream = make_logger(scrubber())
    logger.info("%d items", TOKEN)
    assert TOKEN not in stream.getvalue()


def test_stream_wrapper():
    raw = io.StringIO()
    wrapped = ScrubbingStream(raw, scrubber())
    print(f"token={TOKEN}", file=wrapped)
    wrapped.flush()
    assert raw.getvalue() == f"token={REDACTED}\n"
