//! hubbub integration tests: every test runs the real server binary on a random port with its own data.

mod accounts;
mod durability;
mod errors;
mod harness;
mod messages;
mod photos;
mod rooms;
mod stream;
