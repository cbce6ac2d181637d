use resilient::resilient;

#[derive(Debug)]
pub struct Failure(resilient::Error);

impl From<resilient::Error> for Failure {
    fn from(error: resilient::Error) -> Self {
        Failure(error)
    }
}

pub struct Request {
    pub body: Vec<u8>,
}

fn send(request: Request) -> usize {
    request.body.len()
}

#[resilient(retries = 3)]
async fn post(url: &str, request: Request) -> Result<usize, Failure> {
    Ok(url.len() + send(request))
}

fn main() {}
