-- POST /items/: an item for the bearer (TOKEN).
local headers = {
  ["Content-Type"] = "application/json",
  ["Authorization"] = "Bearer " .. (os.getenv("TOKEN") or ""),
}
local body = '{"title": "benchmark item", "description": "written under load"}'
request = function()
  return wrk.format("POST", "/items/", headers, body)
end
