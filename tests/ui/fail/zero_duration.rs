use resilient::resilient;

#[derive(Debug)]
pub struct Failure(resilient::Error);

impl From<resilient::Error> for Failure {
    fn from(error: resilient::Error) -> Self {
        Failure(error)
    }
}

#[resilient(timeout = "0s", deadline = "0ms", max_delay = "0s", base_delay = "0s")]
async fn fetch(url: &str) -> Result<usize, Failure> {
    Ok(url.len())
}

fn main() {}
