//! Which by-value arguments the body may consume, and so need a fresh clone for every attempt.
//!
//! The rule is syntactic, because a macro sees no types: a binding is left alone when every
//! mention of it in the body sits directly under `&` (through field accesses, as in
//! `&request.headers`), in a macro's tokens too (`debug!("{:?}", &request)`), or names a
//! macro's argument (`field = value`). Any other mention may move or change it: a plain use, a
//! method call (which may take `self` or `&mut self`), `&mut`, an assignment, a closure, or a
//! macro's tokens that are not a plain borrow. A change counts because the next attempt must
//! start from what the caller passed, not from what the last attempt left. Inside an
//! `async move` block or a `move` closure every mention counts, borrow or not: the block takes
//! the binding itself, so the first attempt would keep it from the second.

use std::collections::BTreeSet;

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::visit::{self, Visit};
use syn::{Block, Expr, Ident, Item, Macro, Pat};

/// A binding introduced by an argument pattern, as the body sees it.
#[derive(Clone)]
pub(crate) struct Binding {
    pub(crate) ident: Ident,
    pub(crate) mutable: bool,
    /// Where a missing `Clone` is reported: the argument in the signature.
    pub(crate) span: Span,
    /// The declared type, when the binding is the whole argument (`name: Type`).
    pub(crate) ty: Option<syn::Type>,
    /// The argument's `#[cfg(..)]` attributes, repeated on its clone: without them an argument
    /// compiled out would leave a clone of nothing.
    pub(crate) cfgs: Vec<syn::Attribute>,
}

/// The bindings of an argument pattern, in order. `ref` bindings are left out: they are
/// references already.
pub(crate) fn bindings(pat: &Pat, out: &mut Vec<Binding>) {
    match pat {
        Pat::Ident(binding) => {
            if binding.by_ref.is_none() {
                out.push(Binding {
                    ident: binding.ident.clone(),
                    mutable: binding.mutability.is_some(),
                    span: binding.ident.span(),
                    ty: None,
                    cfgs: Vec::new(),
                });
            }
            if let Some((_, sub)) = &binding.subpat {
                bindings(sub, out);
            }
        }
        Pat::Paren(inner) => bindings(&inner.pat, out),
        Pat::Type(typed) => bindings(&typed.pat, out),
        Pat::Tuple(tuple) => tuple.elems.iter().for_each(|p| bindings(p, out)),
        Pat::TupleStruct(tuple) => tuple.elems.iter().for_each(|p| bindings(p, out)),
        Pat::Slice(slice) => slice.elems.iter().for_each(|p| bindings(p, out)),
        Pat::Struct(fields) => fields.fields.iter().for_each(|f| bindings(&f.pat, out)),
        // References, literals, wildcards and the rest bind nothing that could be consumed.
        _ => {}
    }
}

/// The names among `candidates` that `body` mentions other than directly under a borrow.
pub(crate) fn consumed(body: &Block, candidates: &[Binding]) -> BTreeSet<String> {
    let mut finder = Mentions {
        names: candidates.iter().map(|b| b.ident.to_string()).collect(),
        found: BTreeSet::new(),
        moving: 0,
    };
    finder.visit_block(body);
    finder.found
}

struct Mentions {
    names: BTreeSet<String>,
    found: BTreeSet<String>,
    /// How many `move` blocks and closures enclose the expression being visited.
    moving: u32,
}

impl Mentions {
    fn note(&mut self, ident: &Ident) {
        let name = ident.to_string();
        if self.names.contains(&name) {
            self.found.insert(name);
        }
    }

    /// Notes the names in a macro's tokens, except those under a plain shared borrow (`&x`
    /// followed by nothing that could call a method on it) and those naming an argument of the
    /// macro (`x = …`). After a `move` keyword everything counts, as in a `move` block outside
    /// a macro.
    fn note_tokens(&mut self, tokens: &TokenStream, mut moving: bool) {
        let tokens: Vec<TokenTree> = tokens.clone().into_iter().collect();
        for (at, token) in tokens.iter().enumerate() {
            match token {
                TokenTree::Ident(ident) if ident == "move" => moving = true,
                TokenTree::Ident(ident) => {
                    if moving
                        || !(borrowed_in_tokens(&tokens, at) || names_an_argument(&tokens, at))
                    {
                        self.note(ident);
                    }
                }
                TokenTree::Group(group) => self.note_tokens(&group.stream(), moving),
                TokenTree::Punct(_) | TokenTree::Literal(_) => {}
            }
        }
    }
}

/// Whether the identifier at `at` stands under a shared borrow that ends with it: `&x`,
/// followed by the end, a separator or an operator, but not by `.` (a method may take `self`),
/// `::` or a call's parentheses.
fn borrowed_in_tokens(tokens: &[TokenTree], at: usize) -> bool {
    let before = at.checked_sub(1).and_then(|i| tokens.get(i));
    let under_borrow = matches!(before, Some(TokenTree::Punct(p)) if p.as_char() == '&');
    let after = tokens.get(at + 1);
    let ends_there = match after {
        None => true,
        Some(TokenTree::Punct(p)) => !matches!(p.as_char(), '.' | ':'),
        Some(TokenTree::Group(g)) => g.delimiter() != proc_macro2::Delimiter::Parenthesis,
        Some(TokenTree::Ident(_) | TokenTree::Literal(_)) => true,
    };
    under_borrow && ends_there
}

/// Whether the identifier at `at` names a macro's argument, as in `format!("{x}", x = 1)` or the
/// `field = value` pairs `#[tracing::instrument]` writes into its span: first in the list or
/// after a comma, followed by a lone `=`.
pub(crate) fn names_an_argument(tokens: &[TokenTree], at: usize) -> bool {
    let before = at.checked_sub(1).and_then(|i| tokens.get(i));
    let starts_an_argument =
        before.is_none_or(|t| matches!(t, TokenTree::Punct(p) if p.as_char() == ','));
    let assigned = matches!(
        (tokens.get(at + 1), tokens.get(at + 2)),
        (Some(TokenTree::Punct(eq)), next)
            if eq.as_char() == '='
                && eq.spacing() == proc_macro2::Spacing::Alone
                && !matches!(next, Some(TokenTree::Punct(p)) if matches!(p.as_char(), '=' | '>'))
    );
    starts_an_argument && assigned
}

impl<'ast> Visit<'ast> for Mentions {
    fn visit_expr(&mut self, expr: &'ast Expr) {
        match expr {
            Expr::Path(path) if path.qself.is_none() => {
                if let Some(ident) = path.path.get_ident() {
                    self.note(ident);
                }
            }
            Expr::Async(block) if block.capture.is_some() => {
                self.moving += 1;
                visit::visit_expr(self, expr);
                self.moving -= 1;
            }
            Expr::Closure(closure) if closure.capture.is_some() => {
                self.moving += 1;
                visit::visit_expr(self, expr);
                self.moving -= 1;
            }
            // A `move` block takes even what it borrows; `&mut` changes what the next attempt
            // would see.
            Expr::Reference(borrow) if self.moving > 0 || borrow.mutability.is_some() => {
                visit::visit_expr(self, expr)
            }
            Expr::Reference(borrow) => {
                // `&x` and `&x.field.inner` borrow `x`; anything else under the `&` is visited
                // as usual.
                let mut place = &*borrow.expr;
                loop {
                    match place {
                        Expr::Field(field) => place = &field.base,
                        Expr::Paren(paren) => place = &paren.expr,
                        Expr::Group(group) => place = &group.expr,
                        _ => break,
                    }
                }
                let borrows_an_argument = matches!(
                    place,
                    Expr::Path(path) if path.qself.is_none() && path.path.get_ident().is_some()
                );
                if !borrows_an_argument {
                    visit::visit_expr(self, expr);
                }
            }
            _ => visit::visit_expr(self, expr),
        }
    }

    fn visit_macro(&mut self, mac: &'ast Macro) {
        self.note_tokens(&mac.tokens, self.moving > 0);
    }

    fn visit_item(&mut self, _: &'ast Item) {
        // A nested item cannot see the function's arguments.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(args: &str, body: &str) -> Vec<String> {
        let pats: syn::punctuated::Punctuated<syn::FnArg, syn::Token![,]> =
            syn::parse::Parser::parse_str(syn::punctuated::Punctuated::parse_terminated, args)
                .unwrap();
        let mut candidates = Vec::new();
        for arg in &pats {
            if let syn::FnArg::Typed(typed) = arg {
                bindings(&typed.pat, &mut candidates);
            }
        }
        let body: Block = syn::parse_str(body).unwrap();
        consumed(&body, &candidates).into_iter().collect()
    }

    #[test]
    fn borrows_need_no_clone() {
        assert!(check("s: String", "{ takes(&s); takes(&s.field.x) }").is_empty());
        assert!(check("s: String", "{ fn inner(s: String) -> String { s } }").is_empty());
    }

    #[test]
    fn moves_and_method_calls_need_a_clone() {
        assert_eq!(check("s: String, n: u32", "{ consume(s); &n }"), ["s"]);
        assert_eq!(check("s: String", "{ s.len() }"), ["s"]);
        assert_eq!(check("s: String", "{ let f = move || s; }"), ["s"]);
        assert_eq!(check("s: String", "{ &s[..].to_owned() }"), ["s"]);
        assert_eq!(check("s: String", "{ Request { s } }"), ["s"]);
    }

    #[test]
    fn changes_need_a_clone_so_each_attempt_starts_afresh() {
        assert_eq!(check("mut b: Vec<u8>", "{ read_into(&mut b) }"), ["b"]);
        assert_eq!(check("mut n: u32", "{ n += 1; &n }"), ["n"]);
        assert_eq!(check("mut b: Vec<u8>", "{ m!(&mut b) }"), ["b"]);
    }

    #[test]
    fn macro_tokens_count_as_a_use() {
        assert_eq!(check("s: String", "{ vec![s] }"), ["s"]);
        assert!(check("s: String", "{ println!(\"{s}\") }").is_empty());
        assert_eq!(check("s: String", "{ m!(&s.into_bytes()) }"), ["s"]);
        assert_eq!(check("s: String", "{ m!(&s::f()) }"), ["s"]);
    }

    #[test]
    fn a_plain_borrow_in_a_macro_is_a_borrow() {
        assert!(check("s: String", "{ debug!(\"{:?}\", &s); m!(&s, x) }").is_empty());
        // What `#[tracing::instrument]` writes into its span when it runs first.
        assert!(check("s: String", "{ span!(Level::INFO, \"f\", s = debug(&s)) }").is_empty());
    }

    #[test]
    fn move_blocks_and_closures_take_what_they_mention() {
        assert_eq!(check("s: String", "{ async move { f(&s) }.await }"), ["s"]);
        assert_eq!(check("s: String", "{ let g = move || s.len(); }"), ["s"]);
        assert_eq!(
            check("s: String", "{ spawn(async move { m!(&s) }) }"),
            ["s"]
        );
        assert_eq!(check("s: String", "{ m!(async move { &s }) }"), ["s"]);
        // Without `move` the block or closure borrows.
        assert!(check("s: String", "{ async { f(&s) }.await; let g = || f(&s); }").is_empty());
    }

    #[test]
    fn destructured_bindings_are_tracked_one_by_one() {
        assert_eq!(
            check("(a, mut b): (String, Vec<u8>)", "{ &a; b.push(1) }"),
            ["b"]
        );
        assert_eq!(
            check("Pair { left, right: ref r }: Pair", "{ left; r }"),
            ["left"]
        );
    }
}
