//! One routed page per file.

pub mod admin;
pub mod builder;
pub mod compare;
pub mod experiment;
pub mod home;
pub mod judge;
pub mod live;
pub mod login;
pub mod not_found;
pub mod project;
pub mod projects;
pub mod run;
pub mod setup;
