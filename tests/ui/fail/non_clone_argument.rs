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

#[resilient(retries = 3)]
async fn in_background(request: Request) -> Result<usize, Failure> {
    // Only borrowed, but inside an `async move` block, which takes `request` itself.
    let task = async move { peek(&request) };
    Ok(task.await)
}

fn peek(request: &Request) -> usize {
    request.body.len()
}

#[async_trait::async_trait]
trait Poster {
    async fn post(&self, request: Request) -> Result<usize, Failure>;
}

struct Client;

#[async_trait::async_trait]
impl Poster for Client {
    #[resilient(retries = 3)]
    async fn post(&self, request: Request) -> Result<usize, Failure> {
        Ok(send(request))
    }
}

fn main() {}
