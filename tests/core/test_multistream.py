"""multistream-select sans-IO: byte vectors, fragmentation, limits, fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.errors import MessageTooLarge, NegotiationError, P2PError, ProtocolNotSupported
from p2pkit.multistream import (
    HEADER,
    LS_MESSAGE,
    NA_MESSAGE,
    PROTOCOL_ID,
    Initiator,
    ListRequest,
    ListRequested,
    MessageReader,
    ProtocolRefused,
    ProtocolSelected,
    ProtocolsListed,
    Responder,
    decode_ls_response,
    encode_ls_response,
    encode_message,
    encode_messages,
)
from p2pkit.varint import encode_uvarint

NOISE = "/noise"
YAMUX = "/yamux/1.0.0"


def step(machine: Initiator | Responder | ListRequest, data: bytes) -> bytes:
    """Feed ``data``; return what the machine has to send then."""
    machine.receive_data(data)
    return machine.data_to_send()


def pump(a: Initiator, b: Responder) -> None:
    """Exchange bytes between the two machines until neither has anything to say."""
    to_b = a.data_to_send()
    to_a = b.data_to_send()
    for _ in range(100):
        if not to_a and not to_b:
            return
        nxt_b = step(a, to_a) if to_a else b""
        nxt_a = step(b, to_b) if to_b else b""
        to_a, to_b = nxt_a, nxt_b
    raise AssertionError("no convergence")


# -- byte vectors ---------------------------------------------------------------------


def test_encoding_vectors() -> None:
    assert HEADER == b"\x13/multistream/1.0.0\n"
    assert NA_MESSAGE == b"\x03na\n"
    assert LS_MESSAGE == b"\x03ls\n"
    assert encode_message("/noise") == b"\x07/noise\n"
    assert encode_messages("/multistream/1.0.0", "/noise") == HEADER + b"\x07/noise\n"
    long_id = "/" + "x" * 200
    assert encode_message(long_id) == b"\xca\x01" + long_id.encode() + b"\n"


def test_ls_response_vector() -> None:
    enc = encode_ls_response(["/a", "/bc"])
    # outer length = 4 ("\x03/a\n") + 5 ("\x04/bc\n") + 1 ("\n") = 10
    assert enc == b"\x0a\x03/a\n\x04/bc\n\n"
    reader = MessageReader()
    reader.feed(enc)
    frame = reader.next_frame()
    assert frame is not None
    assert decode_ls_response(frame) == ["/a", "/bc"]
    assert decode_ls_response(b"\n") == []


def test_list_request() -> None:
    req = ListRequest()
    assert req.data_to_send() == HEADER + LS_MESSAGE
    big = [f"/proto/{i:04d}/" + "y" * 100 for i in range(200)]  # > 1024 bytes: allowed here
    answer = HEADER + encode_ls_response(big) + b"rest"
    for i in range(len(answer)):
        step(req, answer[i : i + 1])
    assert req.done and req.protocols == big
    assert req.leftover == b"rest"
    req = ListRequest()
    step(req, HEADER + NA_MESSAGE)
    assert req.done and req.protocols is None
    with pytest.raises(MessageTooLarge):
        ListRequest(max_response_size=100).receive_data(HEADER + encode_uvarint(101))
    with pytest.raises(NegotiationError):
        ListRequest().receive_data(HEADER + b"\x03/a\x00")  # entries not newline-terminated


def test_initiator_first_write_is_header_plus_proposal() -> None:
    init = Initiator([NOISE, "/tls/1.0.0"])
    assert init.data_to_send() == HEADER + b"\x07/noise\n"
    assert not init.done and init.selected is None
    assert step(init, HEADER + b"\x07/noise\n") == b""
    assert init.done and init.selected == NOISE
    assert init.leftover == b""


def test_responder_answers_header_then_echo() -> None:
    resp = Responder([NOISE])
    assert resp.data_to_send() == b""
    assert step(resp, HEADER) == HEADER
    assert not resp.done
    assert step(resp, b"\x07/noise\n") == b"\x07/noise\n"
    assert resp.done and resp.selected == NOISE


def test_responder_header_and_proposal_in_one_packet() -> None:
    resp = Responder([NOISE])
    assert step(resp, HEADER + b"\x07/noise\n") == HEADER + b"\x07/noise\n"
    assert resp.done and resp.selected == NOISE


def test_responder_eager_header() -> None:
    resp = Responder([NOISE], eager_header=True)
    assert resp.data_to_send() == HEADER
    assert step(resp, HEADER + b"\x07/noise\n") == b"\x07/noise\n"


def test_byte_by_byte_both_roles() -> None:
    init = Initiator(["/x", NOISE])
    resp = Responder([NOISE])
    to_resp = init.data_to_send()
    to_init = b""
    for _ in range(20):
        nxt_init = b""
        for i in range(len(to_resp)):
            nxt_init += step(resp, to_resp[i : i + 1])
        nxt_resp = b""
        for i in range(len(to_init)):
            nxt_resp += step(init, to_init[i : i + 1])
        to_init, to_resp = nxt_init, nxt_resp
        if init.done and resp.done:
            break
    assert init.selected == resp.selected == NOISE


def test_several_proposals_with_na() -> None:
    init = Initiator(["/tls/1.0.0", "/secio/1.0.0", NOISE])
    resp = Responder([NOISE])
    first = init.data_to_send()
    assert first == HEADER + encode_message("/tls/1.0.0")
    assert step(resp, first) == HEADER + NA_MESSAGE
    assert step(init, HEADER + NA_MESSAGE) == encode_message("/secio/1.0.0")
    assert step(resp, encode_message("/secio/1.0.0")) == NA_MESSAGE
    assert step(init, NA_MESSAGE) == encode_message(NOISE)
    assert step(resp, encode_message(NOISE)) == encode_message(NOISE)
    assert step(init, encode_message(NOISE)) == b""
    assert init.selected == resp.selected == NOISE


def test_all_refused() -> None:
    init = Initiator(["/a", "/b"])
    resp = Responder(["/c"])
    with pytest.raises(ProtocolNotSupported) as info:
        pump(init, resp)
    assert info.value.proposed == ["/a", "/b"]


def test_ls_with_and_without_list() -> None:
    resp = Responder(lambda p: p == NOISE, supported=[NOISE, YAMUX])
    out = step(resp, HEADER + LS_MESSAGE)
    assert out == HEADER + encode_ls_response([NOISE, YAMUX])
    assert not resp.done
    resp2 = Responder(lambda p: p == NOISE)
    assert step(resp2, HEADER + LS_MESSAGE) == HEADER + NA_MESSAGE
    # A sequence doubles as the ls list.
    resp3 = Responder([YAMUX])
    assert step(resp3, HEADER + LS_MESSAGE) == HEADER + encode_ls_response([YAMUX])


def test_surplus_bytes_preserved_both_roles() -> None:
    resp = Responder([NOISE])
    assert step(resp, HEADER + encode_message(NOISE) + b"APP") == HEADER + encode_message(
        NOISE
    )
    step(resp, b"MORE")  # after done: kept, not parsed
    assert resp.leftover == b"APPMORE"
    init = Initiator([NOISE])
    init.data_to_send()
    # Application data that happens to look like a multistream message stays intact.
    assert step(init, HEADER + encode_message(NOISE) + NA_MESSAGE + b"\xff") == b""
    assert init.leftover == NA_MESSAGE + b"\xff"


def test_lazy_success_and_na() -> None:
    init = Initiator([NOISE], lazy=True)
    assert init.selected == NOISE and not init.done
    assert init.data_to_send() == HEADER + encode_message(NOISE)
    step(init, HEADER + encode_message(NOISE) + b"data")
    assert init.done and init.leftover == b"data"

    init = Initiator([NOISE], lazy=True)
    init.data_to_send()
    with pytest.raises(ProtocolNotSupported):
        step(init, HEADER + NA_MESSAGE)
    with pytest.raises(ValueError):
        Initiator(["/a", "/b"], lazy=True)


def test_events_and_dead_after_error() -> None:
    init = Initiator(["/a", NOISE])
    resp = Responder([NOISE])
    assert resp.receive_data(init.data_to_send()) == [ProtocolRefused("/a")]
    assert init.receive_data(resp.data_to_send()) == [ProtocolRefused("/a")]
    assert resp.receive_data(init.data_to_send()) == [ProtocolSelected(NOISE)]
    assert init.receive_data(resp.data_to_send()) == [ProtocolSelected(NOISE)]
    assert resp.receive_data(HEADER) == [] and resp.leftover == HEADER  # after done
    lister = Responder([NOISE])
    assert lister.receive_data(HEADER + LS_MESSAGE) == [ListRequested()]
    req = ListRequest()
    assert req.receive_data(lister.data_to_send()) == [ProtocolsListed((NOISE,))]
    bad = Responder([NOISE])
    with pytest.raises(NegotiationError) as info:
        bad.receive_data(b"\x02x\n")
    assert bad.error is info.value
    with pytest.raises(NegotiationError) as again:
        bad.receive_data(HEADER)
    assert again.value is info.value


# -- limits and malformed input -------------------------------------------------------


def test_overlong_prefix_rejected_before_body() -> None:
    resp = Responder([NOISE])
    with pytest.raises(MessageTooLarge):
        step(resp, encode_uvarint(10 * 1024 * 1024))
    # Even a partial prefix that can only mean "too large" is refused at once.
    resp = Responder([NOISE])
    with pytest.raises(MessageTooLarge):
        step(resp, b"\x80\x80")
    resp = Responder([NOISE])
    step(resp, b"\x80")  # could still be small: wait for more
    init = Initiator([NOISE])
    init.data_to_send()
    with pytest.raises(MessageTooLarge):
        step(init, encode_uvarint(1025))


def test_max_size_boundary() -> None:
    reader = MessageReader()
    body = b"/" + b"x" * 1022 + b"\n"  # 1024 bytes: allowed
    reader.feed(encode_uvarint(len(body)) + body)
    assert reader.next_message() == body[:-1].decode()


@pytest.mark.parametrize(
    "frame",
    [
        b"\x06/noise",  # no newline
        b"\x07/no\nse\n",  # newline inside
        b"\x04\xff\xfe/\n",  # invalid UTF-8
        b"\x01\n",  # empty id
        b"\x00",  # empty message
        b"\x81\x00",  # non-minimal varint
    ],
)
def test_malformed_messages(frame: bytes) -> None:
    resp = Responder([NOISE])
    with pytest.raises(NegotiationError):
        step(resp, HEADER + frame)
    init = Initiator([NOISE])
    init.data_to_send()
    with pytest.raises(NegotiationError):
        step(init, HEADER + frame)


def test_wrong_header() -> None:
    with pytest.raises(NegotiationError):
        Responder([NOISE]).receive_data(encode_message("/multistream/2.0.0"))
    init = Initiator([NOISE])
    init.data_to_send()
    with pytest.raises(NegotiationError):
        step(init, encode_message(NOISE))


def test_unexpected_answer() -> None:
    init = Initiator([NOISE])
    init.data_to_send()
    with pytest.raises(NegotiationError):
        step(init, HEADER + encode_message("/other"))


def test_proposal_limit() -> None:
    resp = Responder([NOISE], max_proposals=5)
    out = step(resp, HEADER + encode_messages(*[f"/p{i}" for i in range(5)]))
    assert out == HEADER + NA_MESSAGE * 5
    with pytest.raises(NegotiationError):
        step(resp, encode_message("/p5"))
    # ls counts too.
    resp = Responder([NOISE], max_proposals=2)
    with pytest.raises(NegotiationError):
        step(resp, HEADER + LS_MESSAGE * 3)


def test_local_protocol_ids_validated() -> None:
    for bad in ["", "/a\n", "/" + "x" * 1023, "na", "ls", "/multistream/1.0.0"]:
        with pytest.raises(ValueError):
            Initiator([bad])
    with pytest.raises(TypeError):
        Initiator("/noise")
    with pytest.raises(ValueError):
        Initiator([])


def test_na_and_header_are_never_accepted() -> None:
    resp = Responder(lambda p: True)
    assert step(resp, HEADER + NA_MESSAGE + HEADER) == HEADER + NA_MESSAGE * 2
    assert not resp.done


# -- fuzzing --------------------------------------------------------------------------

chunks = st.lists(st.binary(max_size=64), max_size=20)


@settings(max_examples=300, deadline=None)
@given(prefix=st.booleans(), parts=chunks)
def test_fuzz_responder_only_typed_errors(prefix: bool, parts: list[bytes]) -> None:
    resp = Responder([NOISE, YAMUX], max_proposals=10)
    try:
        if prefix:
            step(resp, HEADER)
        for part in parts:
            out = step(resp, part)
            assert isinstance(out, bytes)
    except P2PError:
        pass


@settings(max_examples=300, deadline=None)
@given(prefix=st.booleans(), lazy=st.booleans(), parts=chunks)
def test_fuzz_initiator_only_typed_errors(prefix: bool, lazy: bool, parts: list[bytes]) -> None:
    init = Initiator([NOISE], lazy=True) if lazy else Initiator([NOISE, YAMUX])
    init.data_to_send()
    try:
        if prefix:
            step(init, HEADER)
        for part in parts:
            step(init, part)
    except P2PError:
        pass


@settings(max_examples=200, deadline=None)
@given(
    protocols=st.lists(
        st.text(
            alphabet=st.characters(exclude_characters="\n", exclude_categories=["Cs"]),
            min_size=1,
            max_size=30,
        ),
        min_size=1,
        max_size=5,
        unique=True,
    ),
    cut=st.integers(min_value=1, max_value=7),
)
def test_fuzz_roundtrip_any_split(protocols: list[str], cut: int) -> None:
    """Valid ids negotiate correctly however the bytes are split."""
    protocols = [p for p in protocols if p not in ("na", "ls", PROTOCOL_ID)] or ["/fallback"]
    target = protocols[-1]
    init = Initiator(protocols)
    resp = Responder([target])
    to_resp, to_init = init.data_to_send(), b""
    for _ in range(50):
        nxt_init = b"".join(
            step(resp, to_resp[i : i + cut]) for i in range(0, len(to_resp), cut)
        )
        nxt_resp = b"".join(
            step(init, to_init[i : i + cut]) for i in range(0, len(to_init), cut)
        )
        to_init, to_resp = nxt_init, nxt_resp
        if init.done and resp.done:
            break
    assert init.selected == resp.selected == target
