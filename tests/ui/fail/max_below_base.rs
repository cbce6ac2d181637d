use resilient::resilient;

#[derive(Debug)]
pub struct Failure(resilient::Error);

impl From<resilient::Error> for Failure {
    fn from(error: resilient::Error) -> Self {
        Failure(error)
    }
}

#[resilient(base_delay = "2s", max_delay = "500ms")]
async fn fetch(url: &str) -> Result<usize, Failure> {
    Ok(url.len())
}

#[resilient(max_delay = "100ms")]
async fn below_the_default(url: &str) -> Result<usize, Failure> {
    Ok(url.len())
}

#[resilient(base_delay = "2m")]
async fn above_the_default_cap(url: &str) -> Result<usize, Failure> {
    Ok(url.len())
}

fn main() {}
