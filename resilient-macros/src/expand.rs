//! The rewrite: the function keeps its signature, and its body runs once per attempt inside a
//! loop driven by the runtime's `Call`.
//!
//! The loop is written into the function, not passed as a closure, because a closure cannot
//! hand `&mut self` out again for each attempt, while an `async` block made fresh on every turn
//! of the loop borrows it only for that attempt.

use std::collections::BTreeSet;

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned as _;
use syn::visit_mut::{self, VisitMut};
use syn::{Block, Expr, FnArg, Pat, Stmt, Type};

use crate::args::Args;
use crate::consume::{self, Binding};
use crate::item::{self, Function, Shape};
use crate::validate;

/// The whole attribute: on any error, the function is emitted untouched next to the error, so
/// that callers still type-check and the IDE keeps its completions.
pub(crate) fn attribute(args: TokenStream, item: TokenStream) -> TokenStream {
    match rewrite(args, item.clone()) {
        Ok(rewritten) => rewritten,
        Err(error) => {
            let mut tokens = error.into_compile_error();
            tokens.extend(item);
            tokens
        }
    }
}

fn rewrite(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let args = syn::parse2::<Args>(args).and_then(|args| {
        validate::validate(&args)?;
        Ok(args)
    });
    let function = syn::parse2::<Function>(item)
        .map_err(|error| {
            let message = format!("`#[resilient]` goes on an `async fn` only: {error}");
            syn::Error::new(error.span(), message)
        })
        .and_then(|function| {
            let shape = item::shape(&function)?;
            Ok((function, shape))
        });
    let (args, (function, shape)) = match (args, function) {
        (Ok(args), Ok(function)) => (args, function),
        (Err(mut first), Err(second)) => {
            first.combine(second);
            return Err(first);
        }
        (Err(error), _) | (_, Err(error)) => return Err(error),
    };
    match shape {
        Shape::Async { output } => Ok(rewrite_async(&args, function, &output)),
        Shape::Boxed { output } => rewrite_boxed(&args, function, &output),
    }
}

// Input:
//     #[resilient(retries = 3)]
//     pub async fn chat(&mut self, prompt: String) -> Result<String, ChatError> { body }
//
// Output (paths into `::resilient::__private` shortened):
//     pub async fn chat(&mut self, prompt: String) -> Result<String, ChatError> {
//         static __RESILIENT_POLICY: RetryPolicy = RetryPolicy::new().retries(3);
//         let __resilient_policy = &__RESILIENT_POLICY;
//         let mut __resilient_call = Call::new(__resilient_policy, None, AlwaysTransient)
//             .operation("chat");
//         loop {
//             let prompt = fresh::<String>(&prompt);   // if `body` may consume it; see `clones`
//             let __resilient_self = &mut *self;             // `self` in `body` renamed to it
//             let __resilient_attempt = async {
//                 let __resilient_ret: Result<String, ChatError> = { body };
//                 __resilient_ret
//             };
//             match attempt(&mut __resilient_call, __resilient_attempt).await {
//                 ControlFlow::Break(result) => return result,
//                 ControlFlow::Continue(()) => {}
//             }
//         }
//     }
fn rewrite_async(args: &Args, mut function: Function, output: &Type) -> TokenStream {
    let mut candidates = Vec::new();
    let mut borrowed = Vec::new();
    for input in &function.sig.inputs {
        let FnArg::Typed(typed) = input else {
            continue;
        };
        if let Type::Reference(reference) = &*typed.ty {
            // A `&mut` argument is not `Copy` either: one that the body may move gets a reborrow
            // per attempt, as `&mut self` does.
            if reference.mutability.is_some()
                && let Pat::Ident(binding) = &*typed.pat
                && binding.by_ref.is_none()
                && binding.subpat.is_none()
            {
                borrowed.push(Binding {
                    ident: binding.ident.clone(),
                    mutable: binding.mutability.is_some(),
                    span: typed.span(),
                    ty: None,
                    cfgs: cfgs(&typed.attrs),
                });
            }
        } else {
            let first = candidates.len();
            consume::bindings(&typed.pat, &mut candidates);
            for binding in &mut candidates[first..] {
                binding.span = typed.span();
                binding.cfgs = cfgs(&typed.attrs);
            }
            if let (Pat::Ident(_), [binding]) = (&*typed.pat, &mut candidates[first..]) {
                let mut ty = (*typed.ty).clone();
                InferImplTrait.visit_type_mut(&mut ty);
                binding.ty = Some(ty);
            }
        }
    }
    let Some(mut body) = function.body.take() else {
        // `item::shape` has already turned a missing body into an error.
        return function.into_tokens();
    };
    let all: Vec<Binding> = candidates.iter().chain(&borrowed).cloned().collect();
    let consumed = consume::consumed(&body, &all);
    let mut reborrow = None;
    if let Some(self_token) = mut_self(&function.sig) {
        let renamed = syn::Ident::new("__resilient_self", self_token.span);
        RenameSelf(&renamed).visit_block_mut(&mut body);
        reborrow = Some(quote!(let #renamed = &mut *#self_token;));
    }
    for input in &mut function.sig.inputs {
        if let FnArg::Typed(typed) = input {
            unmut(&mut typed.pat, &consumed);
        }
    }

    let mut clones = clones(&candidates, &consumed);
    clones.extend(reborrows(&borrowed, &consumed));
    clones.extend(reborrow);
    let body = retry_loop(args, &function.sig.ident, output, &clones, &body);
    function.body = Some(Block {
        brace_token: Default::default(),
        stmts: vec![Stmt::Expr(Expr::Verbatim(body), None)],
    });
    function.into_tokens()
}

// Input (`#[async_trait]` has run first, see `item::boxed_body`):
//     fn f<'life0, 'async_trait>(&'life0 mut self, x: String)
//         -> Pin<Box<dyn Future<Output = R> + Send + 'async_trait>>
//     {
//         Box::pin(async move {
//             if let Some(__ret) = None::<R> { return __ret; }
//             let mut __self = self;
//             let x = x;
//             let __ret: R = { body };
//             __ret
//         })
//     }
//
// Output: the same, with `{ body }` replaced by the retry loop around it. The arguments have
// been moved into the `async move` block by then, so the clones are made from those moves.
fn rewrite_boxed(args: &Args, mut function: Function, output: &Type) -> syn::Result<TokenStream> {
    let ident = function.sig.ident.clone();
    let sig_span = function.sig.span();
    let unrecognised = || {
        syn::Error::new(
            sig_span,
            "`#[resilient]` works on `async fn` only: this function returns a boxed future, \
             but not in the shape `#[async_trait]` writes; make it an `async fn` (if \
             `#[async_trait]` did write it, please report this with its version)",
        )
    };
    // `#[async_trait]` moves each by-value argument into its future with `let x = x;`; the
    // signature still tells the types of the plain ones.
    let mut declared_types = std::collections::HashMap::new();
    for input in &function.sig.inputs {
        if let FnArg::Typed(typed) = input
            && let Pat::Ident(binding) = &*typed.pat
        {
            let mut ty = (*typed.ty).clone();
            InferImplTrait.visit_type_mut(&mut ty);
            declared_types.insert(binding.ident.to_string(), ty);
        }
    }
    let mut_self = mut_self(&function.sig).is_some();
    let stmts = boxed_stmts_mut(&mut function).ok_or_else(unrecognised)?;
    let stmts = ret_stmts(stmts).ok_or_else(unrecognised)?;
    let Some(at) = stmts
        .iter()
        .position(|stmt| matches!(stmt, Stmt::Local(local) if item::is_boxed_ret(local)))
    else {
        return Err(unrecognised());
    };

    let mut candidates = Vec::new();
    let mut borrowed = Vec::new();
    for stmt in &stmts[..at] {
        let Stmt::Local(local) = stmt else {
            continue;
        };
        let first = candidates.len();
        consume::bindings(&local.pat, &mut candidates);
        let moves_self = local.init.as_ref().is_some_and(|init| is_self(&init.expr));
        for mut binding in candidates.drain(first..).collect::<Vec<_>>() {
            binding.span = local.pat.span();
            binding.ty = declared_types.get(&binding.ident.to_string()).cloned();
            binding.cfgs = cfgs(&local.attrs);
            // `let mut __self = self;` of a `&mut self` method, or a `&mut` argument: reborrowed
            // per attempt. A `&self` or `self` by value is no candidate at all.
            let mut_reference = matches!(
                &binding.ty,
                Some(Type::Reference(reference)) if reference.mutability.is_some()
            );
            if moves_self {
                if mut_self {
                    binding.mutable = false;
                    borrowed.push(binding);
                }
            } else if mut_reference {
                binding.mutable = false;
                borrowed.push(binding);
            } else {
                candidates.push(binding);
            }
        }
    }
    let Stmt::Local(ret) = &mut stmts[at] else {
        return Err(unrecognised());
    };
    let Some(init) = &mut ret.init else {
        return Err(unrecognised());
    };
    let Expr::Block(body) = &*init.expr else {
        return Err(unrecognised());
    };
    let all: Vec<Binding> = candidates.iter().chain(&borrowed).cloned().collect();
    let consumed = consume::consumed(&body.block, &all);
    let mut clones = clones(&candidates, &consumed);
    clones.extend(reborrows(&borrowed, &consumed));
    let retried = retry_loop(args, &ident, output, &clones, &body.block);
    *init.expr = Expr::Verbatim(retried);
    let cloned: BTreeSet<String> = candidates
        .iter()
        .map(|binding| binding.ident.to_string())
        .filter(|name| consumed.contains(name))
        .collect();
    for stmt in &mut stmts[..at] {
        if let Stmt::Local(local) = stmt {
            unmut(&mut local.pat, &cloned);
        }
    }
    Ok(function.into_tokens())
}

fn boxed_stmts_mut(function: &mut Function) -> Option<&mut Vec<Stmt>> {
    let Some(Stmt::Expr(Expr::Call(call), None)) = function.body.as_mut()?.stmts.last_mut() else {
        return None;
    };
    match call.args.first_mut() {
        Some(Expr::Async(block)) => Some(&mut block.block.stmts),
        _ => None,
    }
}

/// The statements that hold `let __ret: R = { body };`: those of `#[async_trait]`'s block, or,
/// where `#[tracing::instrument]` ran after it, those of the block it wrapped in its own
/// `async move` (under an `.await` and a `match` when it records errors or return values).
fn ret_stmts(stmts: &mut Vec<Stmt>) -> Option<&mut Vec<Stmt>> {
    let holds_ret = |stmts: &Vec<Stmt>| {
        stmts
            .iter()
            .any(|stmt| matches!(stmt, Stmt::Local(local) if item::is_boxed_ret(local)))
    };
    if holds_ret(stmts) {
        return Some(stmts);
    }
    fn within(expr: &mut Expr) -> Option<&mut Vec<Stmt>> {
        match expr {
            Expr::Async(block) => ret_stmts(&mut block.block.stmts),
            Expr::Block(block) => ret_stmts(&mut block.block.stmts),
            Expr::Await(awaited) => within(&mut awaited.base),
            Expr::Match(matched) => within(&mut matched.expr),
            _ => None,
        }
    }
    for stmt in stmts {
        let found = match stmt {
            Stmt::Local(local) => local.init.as_mut().and_then(|init| within(&mut init.expr)),
            Stmt::Expr(expr, _) => within(expr),
            _ => None,
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

fn is_self(expr: &Expr) -> bool {
    matches!(expr, Expr::Path(path) if path.path.is_ident("self"))
}

/// The `self` of a `&mut self` method.
fn mut_self(sig: &syn::Signature) -> Option<syn::Token![self]> {
    let Some(FnArg::Receiver(receiver)) = sig.inputs.first() else {
        return None;
    };
    let mutable = match &receiver.kind {
        syn::ReceiverKind::Reference(_, _, mutability) => mutability.is_some(),
        syn::ReceiverKind::Typed(_, ty) => {
            matches!(&**ty, Type::Reference(reference) if reference.mutability.is_some())
        }
        _ => false,
    };
    mutable.then_some(receiver.self_token)
}

/// Renames `self` in a body to the attempt's own reborrow of it.
///
/// A `&mut` reference is not `Copy`: a body that moves `self` into an `async move` block or a
/// `move` closure (as `#[tracing::instrument]` does when it runs first) would move it out of
/// the loop in the first attempt. Each attempt instead gets `&mut *self`, under a name of its
/// own, which it may move freely.
struct RenameSelf<'a>(&'a syn::Ident);

impl VisitMut for RenameSelf<'_> {
    fn visit_expr_path_mut(&mut self, path: &mut syn::ExprPath) {
        if path.qself.is_none() && path.path.is_ident("self") {
            let span = path.path.segments[0].ident.span();
            path.path.segments[0].ident = syn::Ident::new(&self.0.to_string(), span);
            return;
        }
        visit_mut::visit_expr_path_mut(self, path);
    }

    fn visit_macro_mut(&mut self, mac: &mut syn::Macro) {
        mac.tokens = rename_self_tokens(std::mem::take(&mut mac.tokens), self.0);
    }

    fn visit_item_mut(&mut self, _: &mut syn::Item) {
        // A nested item has no access to the method's `self`.
    }
}

/// `self` in a macro's tokens, unless it starts a path (`self::module`).
fn rename_self_tokens(tokens: TokenStream, renamed: &syn::Ident) -> TokenStream {
    use proc_macro2::TokenTree;

    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    let mut out = Vec::with_capacity(tokens.len());
    for (at, token) in tokens.iter().enumerate() {
        let starts_path = matches!(
            tokens.get(at + 1),
            Some(TokenTree::Punct(colon)) if colon.as_char() == ':'
        );
        // `self = debug(&self)`, as `#[tracing::instrument]` records the receiver: the field
        // keeps its name, only the value is the attempt's reborrow.
        let names_a_field = crate::consume::names_an_argument(&tokens, at);
        out.push(match token {
            TokenTree::Ident(ident) if ident == "self" && !starts_path && !names_a_field => {
                TokenTree::Ident(syn::Ident::new(&renamed.to_string(), ident.span()))
            }
            TokenTree::Group(group) => {
                let inner = rename_self_tokens(group.stream(), renamed);
                let mut renamed_group = proc_macro2::Group::new(group.delimiter(), inner);
                renamed_group.set_span(group.span());
                TokenTree::Group(renamed_group)
            }
            other => other.clone(),
        });
    }
    out.into_iter().collect()
}

/// One clone per consumed binding, spanned at the argument so that a missing `Clone` is
/// reported there, in the signature, rather than inside the expansion.
fn clones(candidates: &[Binding], consumed: &BTreeSet<String>) -> Vec<TokenStream> {
    candidates
        .iter()
        .filter(|binding| consumed.contains(&binding.ident.to_string()))
        .map(
            |Binding {
                 ident,
                 mutable,
                 span,
                 ty,
                 cfgs,
             }| {
                let mutability = mutable.then(|| quote!(mut));
                // The type, where it is known, keeps the compiler from suggesting `&arg`, which
                // would satisfy `Clone` by cloning a reference.
                let ty = ty.as_ref().map(|ty| quote!(::<#ty>));
                // A trait of its own per argument, so that a missing `Clone` is reported in
                // words that name the argument: a diagnostic message can only be a literal.
                let message = format!(
                    "`#[resilient]` needs a fresh `{ident}` for every attempt, \
                     but its type `{{Self}}` is not `Clone`"
                );
                let label = format!(
                    "the body may move or change `{ident}`, so each attempt gets its own clone"
                );
                let note = format!(
                    "only read it through `&{ident}` (outside any `move` block or closure), \
                     take it by reference, or implement `Clone` for `{{Self}}`"
                );
                let clone = quote_spanned!(*span=> {
                    #[diagnostic::on_unimplemented(
                        message = #message,
                        label = #label,
                        note = #note
                    )]
                    trait __ResilientFresh: ::core::marker::Sized {
                        fn __resilient_fresh(&self) -> Self;
                    }
                    impl<T: ::core::clone::Clone> __ResilientFresh for T {
                        #[inline]
                        fn __resilient_fresh(&self) -> Self {
                            ::core::clone::Clone::clone(self)
                        }
                    }
                    #[inline]
                    fn __resilient_fresh<T: __ResilientFresh>(arg: &T) -> T {
                        arg.__resilient_fresh()
                    }
                    __resilient_fresh #ty (&#ident)
                });
                quote!(#(#cfgs)* let #mutability #ident = #clone;)
            },
        )
        .collect()
}

/// One reborrow per `&mut` binding the body may move: `let out = &mut *out;`, so each attempt
/// moves its own and hands the original back when it ends.
fn reborrows(borrowed: &[Binding], consumed: &BTreeSet<String>) -> Vec<TokenStream> {
    borrowed
        .iter()
        .filter(|binding| consumed.contains(&binding.ident.to_string()))
        .map(
            |Binding {
                 ident,
                 mutable,
                 cfgs,
                 ..
             }| {
                let mutability = mutable.then(|| quote!(mut));
                quote!(#(#cfgs)* let #mutability #ident = &mut *#ident;)
            },
        )
        .collect()
}

/// The `#[cfg(..)]` attributes among an argument's.
fn cfgs(attrs: &[syn::Attribute]) -> Vec<syn::Attribute> {
    attrs
        .iter()
        .filter(|attr| attr.path().is_ident("cfg"))
        .cloned()
        .collect()
}

/// Drops `mut` from the bindings that are cloned per attempt: the clone is the one mutated, and
/// a `mut` left on the argument itself would draw an `unused_mut` warning.
fn unmut(pat: &mut Pat, consumed: &BTreeSet<String>) {
    struct Unmut<'a>(&'a BTreeSet<String>);
    impl VisitMut for Unmut<'_> {
        fn visit_pat_ident_mut(&mut self, binding: &mut syn::PatIdent) {
            if self.0.contains(&binding.ident.to_string()) {
                binding.mutability = None;
            }
            visit_mut::visit_pat_ident_mut(self, binding);
        }
    }
    Unmut(consumed).visit_pat_mut(pat);
}

/// The retry loop around `body`, which returns `output`.
///
/// Every local the expansion introduces is named `__resilient_*` and spanned at
/// `Span::mixed_site()`, so the body can neither see nor shadow it, and every path is absolute,
/// so a user's `mod core` or `type Result` changes nothing.
fn retry_loop(
    args: &Args,
    ident: &syn::Ident,
    output: &Type,
    clones: &[TokenStream],
    body: &Block,
) -> TokenStream {
    let site = Span::mixed_site();
    let mut pinned = output.clone();
    InferImplTrait.visit_type_mut(&mut pinned);

    // The setters are `const fn`s: without a named policy, the whole policy is a constant and
    // lives in a static, so a call builds nothing; with one, it is read at each call.
    let mut setters = TokenStream::new();
    if let Some(retries) = &args.retries {
        let retries = u32::try_from(retries.value).unwrap_or(u32::MAX);
        setters.extend(quote_spanned!(site=> .retries(#retries)));
    }
    if let Some(jitter) = &args.jitter {
        let variant = syn::Ident::new(jitter.value, site);
        setters.extend(quote_spanned!(site=> .jitter(::resilient::__private::Jitter::#variant)));
    }
    let durations = [
        ("base_delay", &args.base_delay),
        ("max_delay", &args.max_delay),
        ("timeout", &args.timeout),
        ("deadline", &args.deadline),
        ("max_hint", &args.max_hint),
    ];
    for (setter, value) in durations {
        if let Some(value) = value {
            let setter = syn::Ident::new(setter, site);
            let nanos = value.value;
            setters.extend(quote_spanned! {site=>
                .#setter(::resilient::__private::Duration::from_nanos(#nanos))
            });
        }
    }
    let mut statics = TokenStream::new();
    let policy = match &args.policy {
        Some(name) => {
            statics.extend(quote_spanned! {site=>
                static __RESILIENT_SHARED_POLICY: ::resilient::__private::OnceLock<
                    ::resilient::__private::SharedPolicy,
                > = ::resilient::__private::OnceLock::new();
            });
            quote_spanned! {site=>
                let __resilient_policy =
                    ::resilient::__private::site_policy(&__RESILIENT_SHARED_POLICY, #name)
                        .get()
                        #setters;
                let __resilient_policy = &__resilient_policy;
            }
        }
        None => {
            statics.extend(quote_spanned! {site=>
                static __RESILIENT_POLICY: ::resilient::__private::RetryPolicy =
                    ::resilient::__private::RetryPolicy::new() #setters;
            });
            quote_spanned!(site=> let __resilient_policy = &__RESILIENT_POLICY;)
        }
    };

    let breaker = match &args.breaker {
        Some(name) => {
            statics.extend(quote_spanned! {site=>
                static __RESILIENT_BREAKER: ::resilient::__private::OnceLock<
                    ::resilient::__private::Breaker,
                > = ::resilient::__private::OnceLock::new();
            });
            quote_spanned! {site=>
                ::core::option::Option::Some(
                    ::resilient::__private::site_breaker(&__RESILIENT_BREAKER, #name),
                )
            }
        }
        None => quote_spanned!(site=> ::core::option::Option::None),
    };
    let classifier = match &args.retry_if {
        // Spanned at the path: a classifier for another error type is reported there.
        Some(path) => {
            let at_path = path.span();
            let check = quote!(::resilient::__private::classifier::<#pinned, _>(#path));
            respanned(check, at_path)
        }
        None => quote_spanned!(site=> ::resilient::__private::AlwaysTransient),
    };
    let operation = ident.to_string();

    // Spanned at the return type: an error type without `From<resilient::Error>` is reported
    // there, in the signature the user wrote.
    let at_output = error_type_span(output).resolved_at(site);
    let attempt = quote_spanned! {at_output=>
        ::resilient::__private::attempt(&mut __resilient_call, __resilient_attempt).await
    };

    quote_spanned! {site=>
        {
            #statics
            #policy
            let mut __resilient_call = ::resilient::__private::Call::new(
                __resilient_policy,
                #breaker,
                #classifier,
            )
            .operation(#operation);
            loop {
                #(#clones)*
                let __resilient_attempt = async {
                    // Fixes the type of the block before the body is checked, so that `?` in
                    // the body knows which error to convert into.
                    if let ::core::option::Option::Some(__resilient_ret) =
                        ::core::option::Option::None::<#pinned>
                    {
                        return __resilient_ret;
                    }
                    let __resilient_ret: #pinned = #body;
                    #[allow(unreachable_code)]
                    __resilient_ret
                };
                match #attempt {
                    ::resilient::__private::ControlFlow::Break(__resilient_result) => {
                        return __resilient_result;
                    }
                    ::resilient::__private::ControlFlow::Continue(()) => {}
                }
            }
        }
    }
}

/// `tokens`, every one of them at `span`: the compiler reports a failed bound once per span
/// among the tokens involved, so one span gives one error.
fn respanned(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut token| {
            if let proc_macro2::TokenTree::Group(group) = &token {
                let mut group =
                    proc_macro2::Group::new(group.delimiter(), respanned(group.stream(), span));
                group.set_span(span);
                return proc_macro2::TokenTree::Group(group);
            }
            token.set_span(span);
            token
        })
        .collect()
}

/// Where to report an error type that lacks `From<resilient::Error>`: at `E` in
/// `Result<T, E>`, or at `Result` when the error type is not written out (`io::Result<T>`).
fn error_type_span(output: &Type) -> Span {
    let Type::Path(path) = output else {
        return output.span();
    };
    let Some(last) = path.path.segments.last() else {
        return output.span();
    };
    if let syn::PathArguments::AngleBracketed(args) = &last.arguments
        && let Some(syn::GenericArgument::Type(error)) = args.args.iter().nth(1)
    {
        return error.span();
    }
    last.ident.span()
}

/// `impl Trait` may not appear in a `let` type; `_` lets the compiler fill it in.
struct InferImplTrait;

impl VisitMut for InferImplTrait {
    fn visit_type_mut(&mut self, ty: &mut Type) {
        if let Type::ImplTrait(impl_trait) = ty {
            let span = impl_trait.impl_token.span;
            *ty = Type::Verbatim(quote_spanned!(span=> _));
            return;
        }
        visit_mut::visit_type_mut(self, ty);
    }
}

impl Function {
    fn into_tokens(self) -> TokenStream {
        let Function {
            attrs,
            vis,
            sig,
            inner_attrs,
            body,
            semi,
        } = self;
        let body = body.map(|Block { brace_token, stmts }| {
            let mut tokens = TokenStream::new();
            brace_token.surround(&mut tokens, |inner| {
                inner.extend(quote!(#(#inner_attrs)* #(#stmts)*));
            });
            tokens
        });
        quote!(#(#attrs)* #vis #sig #body #semi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(args: &str, item: &str) -> String {
        let args: TokenStream = syn::parse_str(args).unwrap();
        let item: TokenStream = syn::parse_str(item).unwrap();
        attribute(args, item).to_string()
    }

    #[test]
    fn keeps_the_signature_and_loops_over_the_body() {
        let out = expand(
            "retries = 2, breaker = \"b\"",
            "/// Docs.\n#[inline]\n\
             pub async fn f<T: Clone>(x: T, y: &str) -> Result<T, E> { Ok(x) }",
        );
        assert!(out.starts_with("# [doc = \" Docs.\"] # [inline] pub async fn f < T : Clone >"));
        assert!(out.contains("(x : T , y : & str) -> Result < T , E >"));
        assert!(out.contains("loop"));
        assert!(out.contains("site_breaker (& __RESILIENT_BREAKER , \"b\")"));
        assert!(out.contains(". retries (2u32)"));
        // `x` is consumed and cloned per attempt; `y` is a reference and left alone.
        assert!(out.contains("__resilient_fresh :: < T > (& x) }"));
        assert!(out.contains("needs a fresh `x` for every attempt"));
        assert!(!out.contains("(& y)"));
    }

    #[test]
    fn a_named_policy_is_read_at_each_call() {
        let out = expand(
            "policy = \"p\", jitter = \"none\"",
            "async fn f() -> Result<(), E> { Ok(()) }",
        );
        assert!(out.contains("site_policy (& __RESILIENT_SHARED_POLICY , \"p\") . get ()"));
        assert!(out.contains(". jitter (:: resilient :: __private :: Jitter :: None)"));
        assert!(!out.contains("static __RESILIENT_POLICY"));
    }

    #[test]
    fn errors_come_with_the_function_unchanged() {
        let item = "fn f(x: u8) -> Result<u8, E> { Ok(x) }";
        let out = expand("retries = 3", item);
        assert!(out.starts_with(":: core :: compile_error !"));
        assert!(out.ends_with(&syn::parse_str::<TokenStream>(item).unwrap().to_string()));
    }

    #[test]
    fn mut_self_is_reborrowed_per_attempt() {
        let out = expand(
            "",
            "async fn f(&mut self) -> Result<(), E> { let g = async move { self.x += 1; }; \
             helper!(self, self::path); g.await; Ok(()) }",
        );
        assert!(out.contains("let __resilient_self = & mut * self ;"));
        assert!(out.contains("__resilient_self . x += 1"));
        assert!(out.contains("helper ! (__resilient_self , self :: path)"));

        let out = expand(
            "",
            "async fn f(&mut self) -> Result<(), E> { span!(\"f\", self = debug(&self)); Ok(()) }",
        );
        assert!(out.contains("self = debug (& __resilient_self)"), "{out}");
    }
}
