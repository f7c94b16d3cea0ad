"""multistream-select 1.0: agree on the protocol spoken next on a connection or stream.

``sansio`` holds the pure state machines (:class:`Initiator`, :class:`Responder`,
:class:`MessageReader`); ``aio`` drives them over a :class:`~p2pkit.abc.ByteStream`.
"""

from p2pkit.multistream.aio import (
    DEFAULT_TIMEOUT,
    LazyStream,
    list_protocols,
    select_inbound,
    select_outbound,
    select_outbound_lazy,
)
from p2pkit.multistream.sansio import (
    HEADER,
    LS,
    LS_MESSAGE,
    MAX_LS_RESPONSE_SIZE,
    MAX_MESSAGE_SIZE,
    MAX_PROPOSALS,
    NA,
    NA_MESSAGE,
    PROTOCOL_ID,
    Initiator,
    ListRequest,
    MessageReader,
    Responder,
    decode_ls_response,
    encode_ls_response,
    encode_message,
    encode_messages,
    parse_message,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "HEADER",
    "LS",
    "LS_MESSAGE",
    "MAX_LS_RESPONSE_SIZE",
    "MAX_MESSAGE_SIZE",
    "MAX_PROPOSALS",
    "NA",
    "NA_MESSAGE",
    "PROTOCOL_ID",
    "Initiator",
    "LazyStream",
    "ListRequest",
    "MessageReader",
    "Responder",
    "decode_ls_response",
    "encode_ls_response",
    "encode_message",
    "encode_messages",
    "list_protocols",
    "parse_message",
    "select_inbound",
    "select_outbound",
    "select_outbound_lazy",
]
