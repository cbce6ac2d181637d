use resilient::resilient;

#[derive(Debug)]
pub struct Failure(resilient::Error);

impl From<resilient::Error> for Failure {
    fn from(error: resilient::Error) -> Self {
        Failure(error)
    }
}

trait Store {
    #[resilient(retries = 2)]
    async fn load(&self, key: &str) -> Result<String, Failure>;
}

fn main() {}
