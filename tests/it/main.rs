//! hubbub integration tests: every test runs the real server binary on a random port with its own data.

mod account_security;
mod accounts;
mod admin;
mod authz;
mod bots;
mod cli;
mod cluster;
mod conformance;
mod durability;
mod errors;
mod harness;
mod hostile;
mod loadgen;
mod messages;
mod notifications;
mod openapi;
mod photos;
mod push;
mod push_receivers;
mod push_subscriptions;
mod registration;
mod room_life;
mod rooms;
mod social;
mod stream;
mod upgrade;
