//! Integration tests: a real hub on an ephemeral port, spoken to over real sockets.

mod attacks;
mod auth;
mod bad_input;
mod bounds;
mod classes;
mod close;
mod cors;
mod head_timeout;
mod http2;
mod layers;
mod mercure;
mod openapi;
mod page;
mod presence;
mod publish;
mod rate;
mod resume;
mod routes;
mod shutdown;
mod stats;
mod subscribe;
mod support;
