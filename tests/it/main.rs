//! hubbub integration tests: every test runs the real server binary on a random port with its own data.

mod account_deletion;
mod account_security;
mod accounts;
mod authz;
mod bots;
mod cluster;
mod conformance;
mod durability;
mod errors;
mod export;
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
mod room_life;
mod rooms;
mod social;
mod stream;
mod upgrade;
