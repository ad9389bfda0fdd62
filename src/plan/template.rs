//! Handlebars templates from overlay trees, in strict mode: a missing variable is an
//! error naming the template, line and column, never an empty string in a config file.
//!
//! Context for every template: `node` (name, role, index, spare, fqdn, addresses),
//! `role`, `cluster` (name, domain, networks, admin), `nodes` (all of them), `roles`
//! (role name -> its nodes), `vars` (cluster, profile and node `vars:`, in that order),
//! `swarm` (manager, manager_address, stack), `k3s` (server, url) and `slurm`
//! (cluster_name, controller, controller_address, partitions) when the cluster forms one.
//! Helpers: `join LIST SEP`, `addresses ROLE NETWORK` (that role's addresses, in order).
//!
//! `{{value}}` writes one line: a value holding a line break (or another control
//! character but tab) is refused, naming the template, so a variable can never add a
//! line, a rule or an export to the file it lands in, typed by `var_types:` or not.
//! `{{{value}}}` writes a value as it is, for what is meant to span lines
//! (`{{{mpi_hostfile}}}`).

use std::cell::RefCell;
use std::collections::BTreeMap;

use handlebars::{
    Context, Handlebars, Helper, HelperResult, JsonRender, Output, RenderContext, RenderErrorReason,
};
use serde_json::{Value, json};

use super::overlay::{self, Entry, EntryKind};
use crate::error::{Error, Result};
use crate::inventory::{Inventory, Node};

/// The most bytes one template may render to. Configuration files are kilobytes; a
/// template whose loops multiply (three `{{#each}}` nested over a thousand items make a
/// billion lines) would otherwise grow until the allocator aborts the process, so
/// rendering stops, with an error, as soon as its output passes this.
pub const MAX_RENDERED: usize = 16 << 20;

/// A template's output, refusing to grow past [`MAX_RENDERED`]: the write that would pass
/// it fails, which stops the render, and `over` says why it stopped.
#[derive(Default)]
struct Capped {
    out: Vec<u8>,
    over: bool,
}

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.out.len() + buf.len() > MAX_RENDERED {
            self.over = true;
            return Err(std::io::Error::other("template output past its cap"));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

thread_local! {
    /// The first value a `{{...}}` expression of the render in progress on this thread
    /// would have written across lines. Renders run on the thread that asks for them.
    static BROKEN_LINE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The escape function of `{{...}}`: the value unchanged, and noted when it spans lines.
fn one_line(value: &str) -> String {
    if value.chars().any(|c| c.is_control() && c != '\t') {
        BROKEN_LINE.with(|b| {
            b.borrow_mut().get_or_insert_with(|| value.to_string());
        });
    }
    value.to_string()
}

/// Every overlay tree the inventory's profiles use, with their templates compiled.
pub struct Templates {
    registry: Handlebars<'static>,
    /// Overlay name -> its entries.
    pub trees: BTreeMap<String, Vec<Entry>>,
    cluster: Value,
}

impl Templates {
    /// Loads every overlay the inventory's profiles name and compiles their `.hbs` files.
    pub fn new(inv: &Inventory) -> Result<Templates> {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        registry.register_escape_fn(one_line);
        registry.register_helper("join", Box::new(join));
        registry.register_helper("addresses", Box::new(addresses));
        let mut trees = BTreeMap::new();
        for p in inv.profiles.values() {
            for name in &p.def.overlays {
                if trees.contains_key(name) {
                    continue;
                }
                let entries = overlay::load(&inv.dir, name)?;
                for e in &entries {
                    if let (EntryKind::File { content, .. }, true) =
                        (&e.kind, e.rel.ends_with(".hbs"))
                    {
                        let text = String::from_utf8(content.clone()).map_err(|_| {
                            Error::invalid(format!("{}: a template must be UTF-8 text", e.origin))
                        })?;
                        registry
                            .register_template_string(&e.origin, text)
                            .map_err(|err| {
                                let (line, col) = err.pos().unwrap_or((1, 1));
                                Error::invalid(format!(
                                    "{}:{line}:{col}: template syntax: {}",
                                    e.origin,
                                    err.reason()
                                ))
                            })?;
                    }
                }
                trees.insert(name.clone(), entries);
            }
        }
        Ok(Templates {
            registry,
            trees,
            cluster: cluster_context(inv),
        })
    }

    /// Renders the template registered as `origin` (an overlay entry) or inline text,
    /// into at most [`MAX_RENDERED`] bytes.
    pub fn render(&self, origin: &str, inline: Option<&str>, ctx: &Value) -> Result<String> {
        let mut out = Capped::default();
        BROKEN_LINE.with(|b| b.borrow_mut().take());
        let result = match inline {
            Some(text) => self.registry.render_template_to_write(text, ctx, &mut out),
            None => self.registry.render_to_write(origin, ctx, &mut out),
        };
        if out.over {
            return Err(Error::invalid(format!(
                "{origin}: template: renders to more than {} MiB, the most one file may be",
                MAX_RENDERED >> 20
            ))
            .with_hint("an `{{#each}}` inside another multiplies; render each list once, or ship large files as files, not templates"));
        }
        if let Some(v) = BROKEN_LINE.with(|b| b.borrow_mut().take()) {
            let shown: String = v.escape_debug().take(80).collect();
            return Err(Error::invalid(format!(
                "{origin}: template: a `{{{{...}}}}` expression would write `{shown}`, which spans lines (or holds a control character)"
            ))
            .with_hint("fix the variable's value; a value meant to span lines is written with three braces, `{{{name}}}`"));
        }
        result.map_err(|e| {
            let at = match (e.line_no, e.column_no) {
                (Some(l), Some(c)) => format!("{origin}:{l}:{c}"),
                _ => origin.to_string(),
            };
            let what = match e.reason() {
                RenderErrorReason::MissingVariable(Some(v)) => format!("`{v}` is not defined"),
                other => other.to_string(),
            };
            Error::invalid(format!("{at}: template: {what}"))
                .with_hint("templates see node, role, cluster, nodes, roles, mpi_hostfile, swarm, k3s, slurm and vars (set your own under `vars:`)")
        })?;
        String::from_utf8(out.out)
            .map_err(|_| Error::invalid(format!("{origin}: template: rendered text is not UTF-8")))
    }

    /// The context for one node's templates.
    pub fn context(&self, inv: &Inventory, node: &Node) -> Value {
        let mut vars = serde_json::Map::new();
        vars.extend(inv.file.vars.clone());
        vars.extend(inv.profiles[&node.role].def.vars.clone());
        vars.extend(node.vars.clone());
        let mut ctx = self.cluster.clone();
        ctx["node"] = node_value(inv, node);
        ctx["role"] = json!({ "name": node.role, "profile": inv.profiles[&node.role].name });
        ctx["vars"] = Value::Object(vars);
        ctx
    }
}

fn node_value(inv: &Inventory, n: &Node) -> Value {
    let fqdn = match inv.domain() {
        Some(d) => format!("{}.{d}", n.name),
        None => n.name.clone(),
    };
    let addresses: BTreeMap<&String, String> = n
        .addresses
        .iter()
        .map(|(k, v)| (k, v.to_string()))
        .collect();
    json!({
        "name": n.name, "role": n.role, "index": n.index, "spare": n.spare, "fqdn": fqdn,
        "addresses": addresses, "mac": n.mac,
        // The address on the node's first network, the one /etc/hosts lists.
        "address": n.addresses.values().next().map(|a| a.to_string()),
    })
}

fn cluster_context(inv: &Inventory) -> Value {
    let nodes: Vec<Value> = inv.nodes.iter().map(|n| node_value(inv, n)).collect();
    let mut roles: BTreeMap<String, Vec<Value>> = inv
        .file
        .roles
        .keys()
        .map(|r| (r.clone(), Vec::new()))
        .collect();
    for (n, v) in inv.nodes.iter().zip(&nodes) {
        roles.entry(n.role.clone()).or_default().push(v.clone());
    }
    let networks: BTreeMap<&String, Value> = inv
        .networks
        .iter()
        .map(|(k, n)| {
            (k, json!({
                "subnet": n.subnet.to_string(), "network": n.subnet.network.to_string(), "prefix": n.subnet.prefix,
                "netmask": std::net::Ipv4Addr::from(u32::MAX << (32 - n.subnet.prefix)).to_string(),
                "broadcast": n.subnet.broadcast().to_string(),
                "gateway": n.gateway.map(|g| g.to_string()), "dns": n.dns.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
                "domain": n.domain,
            }))
        })
        .collect();
    let mut context = json!({
        "cluster": { "name": inv.file.cluster, "domain": inv.domain(), "networks": networks, "admin": { "name": inv.file.admin.name } },
        "nodes": nodes,
        "roles": roles,
        // The MPI hostfile pibake also writes beside the images (`{{{mpi_hostfile}}}`: it spans lines).
        "mpi_hostfile": crate::exports::mpi_hostfile(inv),
    });
    // Each cluster kind's parsed settings under its key (`{{swarm.stack}}`), null when
    // the cluster forms none (strict mode makes using it an error there).
    if let Value::Object(map) = &mut context {
        map.extend(inv.kinds.context());
    }
    context
}

/// `{{join list ", "}}`
fn join(
    h: &Helper,
    _: &Handlebars,
    _: &Context,
    _: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    let list = h.param(0).map(|p| p.value().clone()).unwrap_or(Value::Null);
    let sep = h
        .param(1)
        .map(|p| p.value().render())
        .unwrap_or_else(|| " ".into());
    let items: Vec<String> = list
        .as_array()
        .map(|a| a.iter().map(|v| v.render()).collect())
        .unwrap_or_default();
    // What `{{join}}` writes is one line, as `{{...}}` is.
    out.write(&one_line(&items.join(&sep)))?;
    Ok(())
}

/// `{{addresses "worker" "lan"}}`: the role's addresses on a network, space-separated.
fn addresses(
    h: &Helper,
    _: &Handlebars,
    ctx: &Context,
    _: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    let role = h.param(0).map(|p| p.value().render()).unwrap_or_default();
    let net = h.param(1).map(|p| p.value().render()).unwrap_or_default();
    let Some(nodes) = ctx.data()["roles"].get(&role).and_then(Value::as_array) else {
        return Err(RenderErrorReason::Other(format!("addresses: no role `{role}`")).into());
    };
    let list: Vec<String> = nodes
        .iter()
        .filter_map(|n| n["addresses"][&net].as_str().map(str::to_string))
        .collect();
    out.write(&list.join(" "))?;
    Ok(())
}
