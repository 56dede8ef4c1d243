//! Server-only services (the `server` feature): storage, authentication and the operations
//! that every transport calls. Transports stay thin: they parse, call one function here, and
//! render the result.

pub mod admin;
pub mod auth;
pub mod cache;
pub mod charts;
pub mod core;
pub mod datasets;
pub mod demo;
pub mod diff;
pub mod endpoints;
pub mod error;
pub mod events;
pub mod exec;
pub mod experiments;
pub mod exports;
pub mod jobs;
pub mod leaderboard;
pub mod outbound;
pub mod overview;
pub mod pacing;
pub mod passwords;
pub mod planner;
pub mod presence;
pub mod pricing;
pub mod projects;
pub mod providers;
pub mod recorder;
pub mod retention;
pub mod runs;
pub mod samples;
pub mod scoring;
pub mod store;
pub mod sweeps;
pub mod telemetry;
pub mod templates;
#[cfg(feature = "testing")]
pub mod testing;
pub mod webhooks;

pub use self::core::{Core, Secrets};
pub use auth::{Actor, AuthVia};
pub use error::{Error, Result};
pub use store::{Db, DbKind};
