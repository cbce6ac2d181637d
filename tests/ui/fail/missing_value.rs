use resilient::resilient;

#[derive(Debug)]
pub struct Failure(resilient::Error);

impl From<resilient::Error> for Failure {
    fn from(error: resilient::Error) -> Self {
        Failure(error)
    }
}

#[resilient(breaker)]
async fn fetch(url: &str) -> Result<usize, Failure> {
    Ok(url.len())
}

#[resilient("openai")]
async fn no_key(url: &str) -> Result<usize, Failure> {
    Ok(url.len())
}

fn main() {}
