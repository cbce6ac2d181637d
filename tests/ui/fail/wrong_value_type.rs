use resilient::resilient;

#[derive(Debug)]
pub struct Failure(resilient::Error);

impl From<resilient::Error> for Failure {
    fn from(error: resilient::Error) -> Self {
        Failure(error)
    }
}

#[resilient(retries = "3", timeout = 30, breaker = openai)]
async fn fetch(url: &str) -> Result<usize, Failure> {
    Ok(url.len())
}

#[resilient(jitter = 1, retry_if = "transient")]
async fn quoted_path(url: &str) -> Result<usize, Failure> {
    Ok(url.len())
}

fn main() {}
