-- Forward-auth for HAProxy 2.6+ (Lua, built into Debian's and the official packages):
-- asks Latchkey's /api/forward-auth whether the person holds an active grant for this site
-- and path, with HAProxy's own HTTP client. HAProxy has no auth_request of its own, and
-- this needs no Lua library beyond what HAProxy ships. Used by forward-auth.cfg beside it.
--
--   http-request lua.latchkey_forward_auth "<forward-auth URL>" "<proxy secret>" "<site host>"
--
-- Sets txn.latchkey_status (Latchkey's status; 0 when it could not be asked),
-- txn.latchkey_www_authenticate, and on a 200 txn.latchkey_user, _groups, _grant,
-- _target, _role and _expires for the configuration to pass on.

local IDENTITY = { "user", "groups", "grant", "target", "role", "expires" }

core.register_action("latchkey_forward_auth", { "http-req" }, function(txn, url, secret, host)
  local sent = txn.http:req_get_headers()
  -- Only what Latchkey reads: the request line and the person's credential or session.
  local headers = {
    ["x-latchkey-proxy-secret"] = { secret },
    ["x-forwarded-method"] = { txn.sf:method() },
    -- The site's own name, not the request's Host: the request goes to this site's backend.
    ["x-forwarded-host"] = { host },
    ["x-forwarded-uri"] = { txn.sf:pathq() },
  }
  for _, name in ipairs({ "authorization", "cookie" }) do
    if sent[name] then headers[name] = { sent[name][0] } end
  end
  txn:set_var("txn.latchkey_status", 0)
  local ok, response = pcall(function()
    return core.httpclient():get({ url = url, headers = headers, timeout = 5000 })
  end)
  if not ok or not response or not response.status then return end
  txn:set_var("txn.latchkey_status", response.status)
  local answer = response.headers or {}
  if answer["www-authenticate"] then txn:set_var("txn.latchkey_www_authenticate", answer["www-authenticate"][0]) end
  if response.status ~= 200 then return end
  for _, field in ipairs(IDENTITY) do
    local value = answer["x-latchkey-" .. field]
    if value then txn:set_var("txn.latchkey_" .. field, value[0]) end
  end
end, 3)
