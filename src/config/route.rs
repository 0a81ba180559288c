//! `[[route]]` checks: the target (a gateway on a connected subnet, on-link, blackhole,
//! unreachable) and multipath routes (`via = [...]`, `weights`).

use std::net::Ipv4Addr;

use super::{
    validate::Ctx, ConfigError, Interface, Route, RouteConfig, RouteTarget, ViaConfig, MAX_PATHS,
};
use crate::wire::ipv4::Cidr;

/// One `[[route]]`: one validated route, or one per gateway of a multipath `via`.
pub(super) fn route(
    cx: &Ctx<'_>,
    base: &str,
    r: &RouteConfig,
    ifaces: &[Interface],
) -> Result<Vec<Route>, ConfigError> {
    let field = |f: &str| format!("{base}.{f}");
    let prefix: Cidr = r.prefix.parse().map_err(|_| {
        cx.err(
            field("prefix"),
            format!("`{}` is not an IPv4 prefix (a.b.c.d/n)", r.prefix),
        )
    })?;
    if prefix.network() != prefix {
        return Err(cx.err(
            field("prefix"),
            format!(
                "{prefix}: host bits set, did you mean {}?",
                prefix.network()
            ),
        ));
    }
    if r.weights.is_some() && !matches!(r.via, Some(ViaConfig::Many(_))) {
        return Err(cx.err(
            field("weights"),
            "`weights` needs a list of gateways in `via`",
        ));
    }
    let target = match (&r.via, &r.dev, &r.kind) {
        (None, None, None) => {
            return Err(cx.err(base, "needs one of `via`, `dev` or `type`"));
        }
        (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => {
            return Err(cx.err(
                field("type"),
                "`type` cannot be combined with `via` or `dev`",
            ));
        }
        (None, None, Some(t)) => match t.as_str() {
            "blackhole" => RouteTarget::Blackhole,
            "unreachable" => RouteTarget::Unreachable,
            "prohibit" => RouteTarget::Prohibit,
            other => {
                return Err(cx.err(
                    field("type"),
                    format!("unknown route type `{other}` (expected \"blackhole\", \"unreachable\" or \"prohibit\")"),
                ));
            }
        },
        (via, dev, None) => {
            let dev =
                dev.as_deref()
                    .map(|d| {
                        ifaces.iter().position(|x| x.name == d).ok_or_else(|| {
                            cx.err(field("dev"), format!("no interface named `{d}`"))
                        })
                    })
                    .transpose()?;
            match (via, dev) {
                (Some(ViaConfig::One(v)), dev) => gateway(cx, &field("via"), v, dev, ifaces)?,
                (Some(ViaConfig::Many(vs)), dev) => {
                    return multipath(cx, base, prefix, vs, r.weights.as_deref(), dev, ifaces)
                }
                (None, Some(interface)) => RouteTarget::Dev { interface },
                (None, None) => return Err(cx.err(base, "needs one of `via`, `dev` or `type`")),
            }
        }
    };
    Ok(vec![Route {
        prefix,
        target,
        weight: 1,
    }])
}

/// `via = [...]`: 1..=16 distinct gateways, each checked like a single `via`, with
/// `weights` (1..=255) if given.
fn multipath(
    cx: &Ctx<'_>,
    base: &str,
    prefix: Cidr,
    vias: &[String],
    weights: Option<&[u16]>,
    dev: Option<usize>,
    ifaces: &[Interface],
) -> Result<Vec<Route>, ConfigError> {
    let field = |f: &str| format!("{base}.{f}");
    if vias.is_empty() || vias.len() > MAX_PATHS {
        return Err(cx.err(
            field("via"),
            format!("a list of 1 to {} gateways (has {})", MAX_PATHS, vias.len()),
        ));
    }
    if let Some(w) = weights {
        if w.len() != vias.len() {
            return Err(cx.err(
                field("weights"),
                format!("{} weights for {} gateways", w.len(), vias.len()),
            ));
        }
    }
    let mut out: Vec<Route> = Vec::with_capacity(vias.len());
    for (k, v) in vias.iter().enumerate() {
        let target = gateway(cx, &format!("{base}.via[{k}]"), v, dev, ifaces)?;
        if let Some(j) = out.iter().position(|r| r.target == target) {
            return Err(cx.err(
                format!("{base}.via[{k}]"),
                format!("{v} is already via[{j}]"),
            ));
        }
        let weight = match weights.map(|w| w[k]) {
            None => 1,
            Some(w @ 1..=255) => w as u8,
            Some(w) => {
                return Err(cx.err(
                    format!("{base}.weights[{k}]"),
                    format!("{w} out of range 1..=255"),
                ))
            }
        };
        out.push(Route {
            prefix,
            target,
            weight,
        });
    }
    Ok(out)
}

/// `via`: a neighbour address on a connected subnet (of `dev` if given), not our own.
fn gateway(
    cx: &Ctx<'_>,
    field: &str,
    text: &str,
    dev: Option<usize>,
    ifaces: &[Interface],
) -> Result<RouteTarget, ConfigError> {
    let gw: Ipv4Addr = text
        .parse()
        .map_err(|_| cx.err(field, format!("`{text}` is not an IPv4 address")))?;
    for (i, x) in ifaces.iter().enumerate() {
        if x.addresses.iter().any(|a| a.address() == gw) {
            return Err(cx.err(
                field,
                format!(
                    "{gw} is this router's own address (interface[{i}] ({}))",
                    x.name
                ),
            ));
        }
    }
    let found = ifaces
        .iter()
        .enumerate()
        .filter(|(i, _)| dev.is_none_or(|d| d == *i))
        .flat_map(|(i, x)| x.addresses.iter().map(move |a| (i, a)))
        .find(|(_, a)| a.contains_addr(&gw));
    let Some((interface, subnet)) = found else {
        return Err(cx.err(
            field,
            match dev {
                Some(d) => format!(
                    "{gw} is not on a connected subnet of interface[{d}] ({})",
                    ifaces[d].name
                ),
                None => format!("{gw} is not on any connected subnet"),
            },
        ));
    };
    let net = subnet.network();
    if subnet.prefix_len() < 31 && (gw == net.address() || Some(gw) == subnet.broadcast()) {
        return Err(cx.err(
            field,
            format!("{gw} is the network or broadcast address of {net}"),
        ));
    }
    Ok(RouteTarget::Via {
        gateway: gw,
        interface,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::{parse, RouteTarget};

    const IF: &str = "[[interface]]\nname = \"r0\"\naddress = \"198.18.0.1/24\"\n\
                      [[interface]]\nname = \"r1\"\naddress = \"198.19.0.1/24\"\n\
                      [[interface]]\nname = \"r2\"\naddress = \"192.0.2.1/24\"\n";

    fn routes(more: &str) -> Result<Vec<crate::config::Route>, String> {
        parse(&format!("{IF}{more}"), "f.toml")
            .map(|c| c.routes)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn multipath_expands_to_one_route_per_gateway() {
        let r = routes(
            "[[route]]\nprefix = \"203.0.113.0/24\"\nvia = [\"198.19.0.2\", \"192.0.2.2\"]\n\
             weights = [3, 1]\n[[route]]\nprefix = \"0.0.0.0/0\"\nvia = \"198.19.0.9\"\n",
        )
        .unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].prefix, r[1].prefix);
        assert_eq!((r[0].weight, r[1].weight, r[2].weight), (3, 1, 1));
        assert_eq!(
            r[1].target,
            RouteTarget::Via {
                gateway: "192.0.2.2".parse().unwrap(),
                interface: 2
            }
        );
        // One gateway in a list is a plain route.
        let one =
            routes("[[route]]\nprefix = \"203.0.113.0/24\"\nvia = [\"198.19.0.2\"]\n").unwrap();
        assert_eq!(one.len(), 1);
    }

    #[test]
    fn multipath_mistakes_are_named() {
        let cases = [
            (
                "via = []",
                "route[0].via: a list of 1 to 16 gateways (has 0)",
            ),
            (
                "via = [\"198.19.0.2\", \"198.19.0.2\"]",
                "route[0].via[1]: 198.19.0.2 is already via[0]",
            ),
            (
                "via = [\"198.19.0.2\", \"198.51.100.7\"]",
                "route[0].via[1]: 198.51.100.7 is not on any connected subnet",
            ),
            (
                "via = [\"198.19.0.2\", \"192.0.2.2\"]\nweights = [1]",
                "route[0].weights: 1 weights for 2 gateways",
            ),
            (
                "via = [\"198.19.0.2\", \"192.0.2.2\"]\nweights = [1, 0]",
                "route[0].weights[1]: 0 out of range 1..=255",
            ),
            (
                "via = [\"198.19.0.2\", \"192.0.2.2\"]\nweights = [1, 256]",
                "route[0].weights[1]: 256 out of range 1..=255",
            ),
            (
                "via = \"198.19.0.2\"\nweights = [1]",
                "route[0].weights: `weights` needs a list of gateways in `via`",
            ),
            (
                "via = [\"198.19.0.2\", \"192.0.2.2\"]\ndev = \"r1\"",
                "route[0].via[1]: 192.0.2.2 is not on a connected subnet of interface[1] (r1)",
            ),
            (
                "via = [\"198.19.0.1\", \"192.0.2.2\"]",
                "route[0].via[0]: 198.19.0.1 is this router's own address",
            ),
        ];
        for (body, want) in cases {
            let e =
                routes(&format!("[[route]]\nprefix = \"203.0.113.0/24\"\n{body}\n")).unwrap_err();
            assert!(e.contains(want), "{body}: {e}");
        }
        // 17 gateways: too many.
        let many: Vec<String> = (2..19).map(|i| format!("\"198.19.0.{i}\"")).collect();
        let e = routes(&format!(
            "[[route]]\nprefix = \"203.0.113.0/24\"\nvia = [{}]\n",
            many.join(",")
        ))
        .unwrap_err();
        assert!(e.contains("a list of 1 to 16 gateways (has 17)"), "{e}");
        // A later [[route]] of the same prefix is still a duplicate, named by its section.
        let e = routes(
            "[[route]]\nprefix = \"203.0.113.0/24\"\nvia = [\"198.19.0.2\", \"192.0.2.2\"]\n\
             [[route]]\nprefix = \"198.51.100.0/24\"\ndev = \"r0\"\n\
             [[route]]\nprefix = \"203.0.113.0/24\"\ndev = \"r0\"\n",
        )
        .unwrap_err();
        assert!(
            e.contains("route[2].prefix: 203.0.113.0/24 duplicates route[0]"),
            "{e}"
        );
    }
}
