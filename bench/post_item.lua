-- POST /users/{id}/items/ for random users 1..10000. TOKEN (a superuser's) is sent
-- as a bearer token when set; the seed app takes no token.
math.randomseed(7)
local headers = { ["Content-Type"] = "application/json" }
local token = os.getenv("TOKEN")
if token and token ~= "" then headers["Authorization"] = "Bearer " .. token end
local body = '{"title": "benchmark item", "description": "written under load"}'
request = function()
  return wrk.format("POST", "/users/" .. math.random(1, 10000) .. "/items/", headers, body)
end
