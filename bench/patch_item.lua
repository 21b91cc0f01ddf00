-- PATCH /items/{id} with If-Match, for random items 1..50000 (TOKEN: a superuser's,
-- who may change any). Every item starts at version 1; each response's ETag is kept
-- for that item's next change. Two changes of one item in flight at once: the second
-- gets 412, as it should (counted apart by bench/run.py).
math.randomseed(5)
local token = os.getenv("TOKEN") or ""
local versions = {}
local body = '{"title": "changed under load"}'
request = function()
  local id = math.random(1, 50000)
  local headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
    ["If-Match"] = '"' .. (versions[id] or "1") .. '"',
  }
  return wrk.format("PATCH", "/items/" .. id, headers, body)
end
response = function(status, headers, body)
  local etag = headers["etag"] or headers["ETag"]
  local id = body:match('"id":(%d+)')
  if etag and id then versions[tonumber(id)] = etag:match('"(%d+)"') end
end
