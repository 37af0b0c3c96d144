//! Integration tests of `dalaba-audio`: every format through `analyse` and
//! the Opus transcode, a table of bad inputs, and a no-panic sweep.

mod bad_input;
mod formats;
mod robustness;
mod stream;
mod support;
mod transcode;
