//! One routed page per file.

pub mod admin;
pub mod builder;
pub mod experiment;
pub mod home;
pub mod live;
pub mod login;
pub mod not_found;
pub mod project;
pub mod projects;
pub mod setup;
