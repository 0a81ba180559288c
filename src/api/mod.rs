//! `api`: the operator's control socket (`xgw show ...`, `xgw reload`, ...).
//!
//! Layers: [`proto`] is the wire protocol (pure serde types); [`service`] answers requests,
//! reading lock-free state itself (counters, the NAT session table, the route set's
//! snapshot) and sending the rest as small jobs to the control thread, which runs them
//! between steps with a budget ([`service::ControlCtx`]); [`render`] turns answers into
//! the tables the CLI prints; [`server`] is the Unix-socket listener and [`client`] the
//! CLI's end. Nothing here runs on a worker, and no client can hold the control thread:
//! a connection is served by its own thread with read and write deadlines, and a job that
//! cannot be queued or answered in time fails with "busy" instead of waiting.
//!
//! ## Protocol (version 1)
//! One UTF-8 JSON object per line, both ways, over a `SOCK_STREAM` Unix socket. A request
//! is `{"version":1,"verb":"<verb>","args":{...}}` (`args` may be left out when a verb has
//! none); a connection may carry any number of requests, answered in order. Every answer
//! starts with a header line:
//! - `{"version":1,"ok":true,"result":<value>}`: the whole answer;
//! - `{"version":1,"ok":false,"error":"<message>"}`: refused, with why;
//! - `{"version":1,"ok":true,"stream":"<kind>"}`: then one `{"item":<value>}` line per
//!   item and a last `{"end":{"count":N,"truncated":bool}}` line (long listings such as
//!   `show nat sessions` stream instead of being built in memory).
//!
//! A request with another major `version`, an unknown verb or bad arguments gets an error
//! header; a line longer than [`proto::MAX_REQUEST`] bytes closes the connection.

pub mod client;
pub mod metrics_http;
pub mod proto;
pub mod render;
pub mod server;
pub mod service;
