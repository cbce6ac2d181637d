use resilient::resilient;

#[derive(Debug)]
pub struct Failure(resilient::Error);

impl From<resilient::Error> for Failure {
    fn from(error: resilient::Error) -> Self {
        Failure(error)
    }
}

#[resilient(retires = 3)]
async fn fetch(url: &str) -> Result<usize, Failure> {
    Ok(url.len())
}

// Every unknown key is reported, keywords too, and so is a bad value after them.
#[resilient(type = 1, retires = 3, jitter = "fuul")]
async fn several(url: &str) -> Result<usize, Failure> {
    Ok(url.len())
}

fn main() {}
