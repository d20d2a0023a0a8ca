// The `tidegate` package: the crate applications depend on. Its documentation is the
// README, whose examples run as this crate's doctests.

#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub use tidegate_async::{
    Async, AsyncByteStream, AsyncClient, AsyncClientBuilder, AsyncRecvHalf, AsyncSendHalf,
    CloseFuture, ClosedFuture, Connecting, EventStream, FlushFuture, FrameSink, Incoming,
    OwnedSendFuture, RecvFuture, SendBatchFuture, SendFuture, ShutdownWriteFuture, SinkError,
    WatermarkStream,
};
pub use tidegate_blocking::{
    Blocking, Client, ClientBuilder, Events, RecvHalf, SendHalf, Watermarks, block_on,
};
pub use tidegate_core::transport::{Link, SocketOption};
pub use tidegate_core::{
    Budget, Builder, ByteStream, Bytes, CloseError, CloseOp, CloseReport, ClosedOp, Config,
    ConnectError, Connected, Connection, ConnectionEvent, ConnectionEvents, ConnectionRef,
    DEFAULT_CAPACITY, DEFAULT_INBOUND_CAPACITY, DEFAULT_WRITE_BIAS, Disconnect, DisconnectKind,
    Ending, EndpointOrder, Facade, FlushError, FlushOp, FrameBatch, FrameLimit, Handshake, IoGroup,
    LastClose, LinkCall, LinkError, PossiblyDelivered, Reconnect, RecvError, RecvOp, SendBatchOp,
    SendError, SendOp, ShutdownWriteOp, Stats, TlsError, TlsErrorKind, TryRecvError, TrySendError,
    UnsentFrame, Watermark, WatermarkEvents, WriteLatency, bytes, codec, is_driver_thread,
    transport,
};
