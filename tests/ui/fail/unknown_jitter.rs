use resilient::resilient;

#[derive(Debug)]
pub struct Failure(resilient::Error);

impl From<resilient::Error> for Failure {
    fn from(error: resilient::Error) -> Self {
        Failure(error)
    }
}

#[resilient(jitter = "fuul")]
async fn fetch(url: &str) -> Result<usize, Failure> {
    Ok(url.len())
}

fn main() {}
