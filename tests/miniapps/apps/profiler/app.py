from sdk import App, HostError

app = App("profiler")


@app.command("whoami")
async def whoami(ctx):
    try:
        profile = await ctx.get_profile()
    except HostError as exc:
        await ctx.send_text(f"profiler: {ctx.user_id} error {exc.code}")
        return
    await ctx.send_text(f"profiler: {profile['id']} name {profile['display_name']}")
