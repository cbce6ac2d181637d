//! Reading `#[resilient(key = value, ...)]` into one typed struct, keeping the span of every
//! value so that later steps can point at the token at fault.

use proc_macro2::Span;
use syn::ext::IdentExt as _;
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned as _;
use syn::{Expr, ExprLit, ExprPath, Ident, Lit, LitInt, LitStr, Token};

use crate::duration;

/// Every key the attribute accepts, in the order the docs list them.
const KEYS: [(&str, Key); 10] = [
    ("retries", Key::Retries),
    ("jitter", Key::Jitter),
    ("base_delay", Key::BaseDelay),
    ("max_delay", Key::MaxDelay),
    ("timeout", Key::Timeout),
    ("deadline", Key::Deadline),
    ("max_hint", Key::MaxHint),
    ("breaker", Key::Breaker),
    ("policy", Key::Policy),
    ("retry_if", Key::RetryIf),
];

#[derive(Clone, Copy)]
enum Key {
    Retries,
    Jitter,
    BaseDelay,
    MaxDelay,
    Timeout,
    Deadline,
    MaxHint,
    Breaker,
    Policy,
    RetryIf,
}

/// The jitter kinds, as written in the attribute and as named in the runtime's `Jitter`.
pub(crate) const JITTERS: [(&str, &str); 4] = [
    ("none", "None"),
    ("full", "Full"),
    ("equal", "Equal"),
    ("decorrelated", "Decorrelated"),
];

/// A value read from the attribute, with the span of the literal it came from.
#[derive(Clone, Debug)]
pub(crate) struct Spanned<T> {
    pub(crate) value: T,
    pub(crate) span: Span,
}

/// The attribute's arguments. Every key is optional; a missing one keeps the runtime default
/// (or the named policy's value when `policy` is given).
#[derive(Default)]
pub(crate) struct Args {
    pub(crate) retries: Option<Spanned<u64>>,
    /// The variant name in the runtime's `Jitter` enum.
    pub(crate) jitter: Option<Spanned<&'static str>>,
    /// Durations in nanoseconds.
    pub(crate) base_delay: Option<Spanned<u64>>,
    pub(crate) max_delay: Option<Spanned<u64>>,
    pub(crate) timeout: Option<Spanned<u64>>,
    pub(crate) deadline: Option<Spanned<u64>>,
    pub(crate) max_hint: Option<Spanned<u64>>,
    pub(crate) breaker: Option<LitStr>,
    pub(crate) policy: Option<LitStr>,
    pub(crate) retry_if: Option<ExprPath>,
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut args = Args::default();
        // Keep reading after a bad value, so one build reports every bad value at once.
        let mut errors: Option<syn::Error> = None;
        let mut seen: Vec<String> = Vec::new();

        let names: Vec<&str> = KEYS.iter().map(|(known, _)| *known).collect();
        while !input.is_empty() {
            // Keywords too (`type = 1`), so that they get the list of keys like any other typo.
            let key = match input.call(Ident::parse_any) {
                Ok(key) => key,
                Err(error) => {
                    let message = format!(
                        "expected a key such as `retries = 3`; the keys are {}",
                        list(&names)
                    );
                    return Err(syn::Error::new(error.span(), message));
                }
            };
            let name = key.to_string();
            let Some(&(_, which)) = KEYS.iter().find(|(known, _)| *known == name) else {
                push(
                    &mut errors,
                    syn::Error::new(
                        key.span(),
                        format!("unknown key `{name}`; the keys are {}", list(&names)),
                    ),
                );
                // Skip its value, if it has one, and go on to report the rest.
                if input.parse::<Option<Token![=]>>()?.is_some() {
                    input.parse::<Expr>()?;
                }
                if input.is_empty() {
                    break;
                }
                input.parse::<Token![,]>()?;
                continue;
            };
            if !input.peek(Token![=]) {
                return Err(syn::Error::new(
                    key.span(),
                    format!(
                        "`{name}` needs a value: write `{name} = {}`",
                        example(&name)
                    ),
                ));
            }
            input.parse::<Token![=]>()?;
            let value: Expr = input.parse()?;

            if seen.contains(&name) {
                push(
                    &mut errors,
                    syn::Error::new(
                        key.span(),
                        format!("`{name}` is given twice; keep one of the two"),
                    ),
                );
            } else if let Err(error) = args.set(which, &name, value) {
                push(&mut errors, error);
            }
            seen.push(name);

            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        match errors {
            Some(error) => Err(error),
            None => Ok(args),
        }
    }
}

impl Args {
    fn set(&mut self, which: Key, key: &str, value: Expr) -> syn::Result<()> {
        match which {
            Key::Retries => self.retries = Some(integer(key, &value)?),
            Key::Jitter => self.jitter = Some(jitter(&value)?),
            Key::BaseDelay => self.base_delay = Some(duration(key, &value)?),
            Key::MaxDelay => self.max_delay = Some(duration(key, &value)?),
            Key::Timeout => self.timeout = Some(duration(key, &value)?),
            Key::Deadline => self.deadline = Some(duration(key, &value)?),
            Key::MaxHint => self.max_hint = Some(duration(key, &value)?),
            Key::Breaker => self.breaker = Some(string(key, &value)?),
            Key::Policy => self.policy = Some(string(key, &value)?),
            Key::RetryIf => self.retry_if = Some(path(&value)?),
        }
        Ok(())
    }
}

fn integer(key: &str, value: &Expr) -> syn::Result<Spanned<u64>> {
    let lit: &LitInt = match literal(value) {
        Some(Lit::Int(lit)) => lit,
        _ => return Err(wrong_type(key, value)),
    };
    let number = lit.base10_parse::<u64>().map_err(|_| {
        syn::Error::new(
            lit.span(),
            format!(
                "`{key}` is far too large; it allows at most {}",
                crate::validate::MAX_RETRIES
            ),
        )
    })?;
    Ok(Spanned {
        value: number,
        span: lit.span(),
    })
}

fn string(key: &str, value: &Expr) -> syn::Result<LitStr> {
    match literal(value) {
        Some(Lit::Str(lit)) => Ok(lit.clone()),
        _ => Err(wrong_type(key, value)),
    }
}

fn jitter(value: &Expr) -> syn::Result<Spanned<&'static str>> {
    let lit = string("jitter", value)?;
    let written = lit.value();
    match JITTERS.iter().find(|(name, _)| *name == written) {
        Some((_, variant)) => Ok(Spanned {
            value: variant,
            span: lit.span(),
        }),
        None => {
            let kinds: Vec<&str> = JITTERS.iter().map(|(name, _)| *name).collect();
            Err(syn::Error::new(
                lit.span(),
                format!(
                    "unknown jitter kind \"{written}\"; the kinds are {}",
                    quoted_list(&kinds)
                ),
            ))
        }
    }
}

fn duration(key: &str, value: &Expr) -> syn::Result<Spanned<u64>> {
    let lit = string(key, value)?;
    match duration::parse(&lit.value()) {
        Ok(nanos) => Ok(Spanned {
            value: nanos,
            span: lit.span(),
        }),
        Err(error) => Err(syn::Error::new(
            lit.span(),
            format!("malformed `{key}`: {error}"),
        )),
    }
}

fn path(value: &Expr) -> syn::Result<ExprPath> {
    match value {
        Expr::Path(path) => Ok(path.clone()),
        _ => Err(wrong_type("retry_if", value)),
    }
}

fn literal(value: &Expr) -> Option<&Lit> {
    match value {
        Expr::Lit(ExprLit { lit, .. }) => Some(lit),
        _ => None,
    }
}

fn wrong_type(key: &str, value: &Expr) -> syn::Error {
    let wanted = match key {
        "retries" => "an integer",
        "jitter" => "a string naming a jitter kind",
        "breaker" => "a string naming a circuit breaker",
        "policy" => "a string naming a retry policy",
        "retry_if" => "the path of a function `fn(&E) -> bool` or `fn(&E) -> Verdict`",
        _ => "a duration string",
    };
    syn::Error::new(
        value.span(),
        format!("`{key}` takes {wanted}: write `{key} = {}`", example(key)),
    )
}

fn example(key: &str) -> &'static str {
    match key {
        "retries" => "3",
        "jitter" => "\"full\"",
        "breaker" => "\"openai\"",
        "policy" => "\"default\"",
        "retry_if" => "is_transient",
        "timeout" => "\"30s\"",
        "deadline" => "\"2m\"",
        "max_delay" | "max_hint" => "\"1m\"",
        _ => "\"250ms\"",
    }
}

fn list(names: &[&str]) -> String {
    names
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn quoted_list(names: &[&str]) -> String {
    names
        .iter()
        .map(|name| format!("\"{name}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

fn push(errors: &mut Option<syn::Error>, error: syn::Error) {
    match errors {
        Some(first) => first.combine(error),
        None => *errors = Some(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(tokens: &str) -> syn::Result<Args> {
        syn::parse_str(tokens)
    }

    fn message(tokens: &str) -> String {
        match parse(tokens) {
            Ok(_) => panic!("`{tokens}` parsed without an error"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn no_arguments_means_defaults() {
        let args = parse("").unwrap();
        assert!(args.retries.is_none() && args.breaker.is_none() && args.retry_if.is_none());
    }

    #[test]
    fn reads_every_key() {
        let args = parse(
            r#"retries = 5, jitter = "equal", base_delay = "250ms", max_delay = "1m",
               timeout = "30s", deadline = "1m30s", max_hint = "20s",
               breaker = "openai", policy = "chat",
               retry_if = errors::is_transient,"#,
        )
        .unwrap();
        assert_eq!(args.retries.unwrap().value, 5);
        assert_eq!(args.jitter.unwrap().value, "Equal");
        assert_eq!(args.base_delay.unwrap().value, 250_000_000);
        assert_eq!(args.max_delay.unwrap().value, 60_000_000_000);
        assert_eq!(args.timeout.unwrap().value, 30_000_000_000);
        assert_eq!(args.deadline.unwrap().value, 90_000_000_000);
        assert_eq!(args.max_hint.unwrap().value, 20_000_000_000);
        assert_eq!(args.breaker.unwrap().value(), "openai");
        assert_eq!(args.policy.unwrap().value(), "chat");
        let path = args.retry_if.unwrap().path;
        assert_eq!(path.segments.len(), 2);
        assert_eq!(path.segments[1].ident, "is_transient");
    }

    #[test]
    fn unknown_keys_list_the_valid_ones() {
        let text = message("retires = 3");
        assert!(text.starts_with("unknown key `retires`; the keys are `retries`, `jitter`"));
        assert!(text.ends_with("`retry_if`"));
    }

    #[test]
    fn duplicate_keys_are_reported() {
        assert_eq!(
            message("retries = 3, retries = 4"),
            "`retries` is given twice; keep one of the two"
        );
    }

    #[test]
    fn wrong_value_types_show_an_example() {
        assert_eq!(
            message("retries = \"3\""),
            "`retries` takes an integer: write `retries = 3`"
        );
        assert_eq!(
            message("timeout = 30"),
            "`timeout` takes a duration string: write `timeout = \"30s\"`"
        );
        assert!(message("retry_if = \"f\"").starts_with("`retry_if` takes the path"));
        assert_eq!(
            message("breaker"),
            "`breaker` needs a value: write `breaker = \"openai\"`"
        );
    }

    #[test]
    fn bad_values_name_the_allowed_ones() {
        assert_eq!(
            message("jitter = \"fuul\""),
            "unknown jitter kind \"fuul\"; \
             the kinds are \"none\", \"full\", \"equal\", \"decorrelated\""
        );
        assert!(message("timeout = \"30\"").starts_with("malformed `timeout`: `30` has no unit"));
    }

    #[test]
    fn every_bad_value_is_reported_at_once() {
        let Err(error) = parse("retries = \"x\", jitter = \"fuul\"") else {
            panic!("two bad values parsed");
        };
        assert_eq!(error.into_iter().count(), 2);
    }
}
