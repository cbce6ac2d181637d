use resilient::resilient;

#[resilient(retries = 3)]
struct Client {
    url: String,
}

fn main() {
    let client = Client { url: String::new() };
    drop(client.url);
}
