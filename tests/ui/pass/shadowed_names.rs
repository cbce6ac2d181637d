//! The expansion uses absolute paths only: local items named like the paths it uses, or like
//! the types in its signature, change nothing.
#![deny(warnings)]
#![allow(dead_code)]

mod core {}
mod std {}
mod resilient {}
mod __private {}

struct Option;
struct ControlFlow;
struct Duration;
struct Call;

#[derive(Debug)]
pub struct Failure(::resilient::Error);

impl From<::resilient::Error> for Failure {
    fn from(error: ::resilient::Error) -> Self {
        Failure(error)
    }
}

type Result<T> = ::std::result::Result<T, Failure>;

#[::resilient::resilient(
    retries = 1,
    timeout = "1s",
    breaker = "ui-shadowed",
    policy = "ui-shadowed"
)]
async fn shadowed(text: String) -> Result<String> {
    let __resilient_call = 1;
    let __resilient_attempt = 2;
    let __resilient_policy = 3;
    Ok(format!(
        "{text}{}",
        __resilient_call + __resilient_attempt + __resilient_policy
    ))
}

fn main() {
    let runtime = ::tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    assert_eq!(runtime.block_on(shadowed("x".into())).unwrap(), "x6");
}
