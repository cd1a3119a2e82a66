package deploy

// marathonDefaults are the values Marathon 1.10 gives the fields of an app
// definition that do not set them (app.raml and AppDefinition's defaults),
// as GET returns them. The plan tells a field left to Marathon from one set
// by hand with them. (The Marathon stand-in, marathontest, has its own
// table, written from Marathon's documentation: it checks this one.)
var marathonDefaults = map[string]any{
	"cmd": nil, "args": nil, "user": nil, "executor": "", "disk": 0.0, "gpus": 0.0,
	"constraints": []any{}, "uris": []any{}, "fetch": []any{}, "storeUrls": []any{},
	"requirePorts": false, "backoffSeconds": 1.0, "backoffFactor": 1.15, "maxLaunchDelaySeconds": 300.0,
	"healthChecks": []any{}, "readinessChecks": []any{}, "dependencies": []any{},
	"upgradeStrategy": map[string]any{"minimumHealthCapacity": 1.0, "maximumOverCapacity": 1.0},
	"labels":          map[string]any{}, "env": map[string]any{}, "secrets": map[string]any{},
	"acceptedResourceRoles": nil, "ipAddress": nil, "residency": nil, "taskKillGracePeriodSeconds": nil,
	"unreachableStrategy": map[string]any{"inactiveAfterSeconds": 0.0, "expungeAfterSeconds": 0.0},
	"killSelection":       "YOUNGEST_FIRST", "container": nil, "portDefinitions": []any{},
	"networks": []any{map[string]any{"mode": "host"}}, "role": "*", "tty": false,
}
