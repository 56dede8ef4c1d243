//! PromptLooper's domain.
//!
//! With default features this crate is only the shared types that the dashboard (WASM) and the
//! backend exchange. The `server` feature adds the services: storage over SQLite or PostgreSQL,
//! authentication, and the operations every transport (server functions, REST, MCP, CLI) calls.
#![forbid(unsafe_code)]

pub mod types;
pub mod validate;

#[cfg(feature = "server")]
pub mod server;

#[cfg(feature = "server")]
pub use server::*;

/// The version every transport reports (`/health`, `--version`, OpenAPI).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
