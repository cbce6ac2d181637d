use resilient::resilient;

#[derive(Debug)]
pub struct Failure(resilient::Error);

impl From<resilient::Error> for Failure {
    fn from(error: resilient::Error) -> Self {
        Failure(error)
    }
}

#[derive(Debug)]
pub struct OtherError;

fn is_transient(_: &OtherError) -> bool {
    true
}

#[resilient(retry_if = is_transient)]
async fn fetch(url: &str) -> Result<usize, Failure> {
    Ok(url.len())
}

fn main() {}
