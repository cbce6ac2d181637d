use resilient::resilient;

#[derive(Debug)]
pub struct Failure(resilient::Error);

impl From<resilient::Error> for Failure {
    fn from(error: resilient::Error) -> Self {
        Failure(error)
    }
}

#[resilient(retries = 1000)]
async fn fetch(url: &str) -> Result<usize, Failure> {
    Ok(url.len())
}

#[resilient(retries = 99999999999999999999999)]
async fn beyond_any_integer(url: &str) -> Result<usize, Failure> {
    Ok(url.len())
}

fn main() {}
