"""multistream-select 1.0: agree on the protocol spoken next on a connection or stream.

``messages`` holds the wire format (:class:`MessageReader`, encoders), ``sansio`` the
pure state machines (:class:`Initiator`, :class:`Responder`, :class:`ListRequest`) and
their events; ``aio`` drives them over a :class:`~p2pkit.abc.ByteStream`.
"""

from p2pkit.multistream.aio import (
    DEFAULT_TIMEOUT,
    LazyStream,
    list_protocols,
    select_inbound,
    select_outbound,
    select_outbound_lazy,
)
from p2pkit.multistream.messages import (
    HEADER,
    LS,
    LS_MESSAGE,
    MAX_LS_RESPONSE_SIZE,
    MAX_MESSAGE_SIZE,
    MAX_PROPOSALS,
    NA,
    NA_MESSAGE,
    PROTOCOL_ID,
    MessageReader,
    decode_ls_response,
    encode_ls_response,
    encode_message,
    encode_messages,
    parse_message,
)
from p2pkit.multistream.sansio import (
    Event,
    Initiator,
    ListRequest,
    ListRequested,
    ProtocolRefused,
    ProtocolSelected,
    ProtocolsListed,
    Responder,
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
    "Event",
    "Initiator",
    "LazyStream",
    "ListRequest",
    "ListRequested",
    "MessageReader",
    "ProtocolRefused",
    "ProtocolSelected",
    "ProtocolsListed",
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
