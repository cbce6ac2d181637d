//! A mistake in the attribute is the only error: the function is still there, so its callers
//! type-check as if the attribute were right.

use resilient::resilient;

#[derive(Debug)]
pub struct Failure(resilient::Error);

impl From<resilient::Error> for Failure {
    fn from(error: resilient::Error) -> Self {
        Failure(error)
    }
}

#[resilient(retries = 3, jitter = "fuul")]
async fn fetch(url: &str) -> Result<usize, Failure> {
    Ok(url.len())
}

async fn caller() -> Result<usize, Failure> {
    let length: usize = fetch("https://example.com").await?;
    Ok(length * 2)
}

fn main() {
    drop(caller());
}
