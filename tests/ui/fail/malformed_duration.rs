use resilient::resilient;

#[derive(Debug)]
pub struct Failure(resilient::Error);

impl From<resilient::Error> for Failure {
    fn from(error: resilient::Error) -> Self {
        Failure(error)
    }
}

#[resilient(timeout = "30")]
async fn no_unit(url: &str) -> Result<usize, Failure> {
    Ok(url.len())
}

#[resilient(base_delay = "5 seconds")]
async fn unknown_unit(url: &str) -> Result<usize, Failure> {
    Ok(url.len())
}

#[resilient(deadline = "30s1m")]
async fn out_of_order(url: &str) -> Result<usize, Failure> {
    Ok(url.len())
}

#[resilient(timeout = "1.5s")]
async fn fraction(url: &str) -> Result<usize, Failure> {
    Ok(url.len())
}

fn main() {}
