use resilient::resilient;

#[derive(Debug)]
pub struct Failure(resilient::Error);

impl From<resilient::Error> for Failure {
    fn from(error: resilient::Error) -> Self {
        Failure(error)
    }
}

#[resilient(retries = 3, jitter = "full", retries = 5)]
async fn fetch(url: &str) -> Result<usize, Failure> {
    Ok(url.len())
}

fn main() {}
